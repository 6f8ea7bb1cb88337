"""Shared helpers for the benchmarks: servers they start themselves, agents, statistics.

Everything listens on 127.0.0.1 and lives in a temporary directory under /tmp (PostgreSQL's
system user must reach it, so never under /root); every helper stops what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
TMP_ROOT = Path("/tmp")
SECRET_KEY = "pasar-bench-secret-key-0123456789abcdef"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=TMP_ROOT))


@contextlib.contextmanager
def embedded_postgres() -> Iterator[tuple[str, Path]]:
    """A fresh embedded PostgreSQL (pgvector) in a temp dir; yields its URL and data directory,
    then stops and removes it."""
    from pasar_core.embedded_pg import EmbeddedPostgres

    base_dir = temp_dir("pasar-bench-pg-")
    server = EmbeddedPostgres(base_dir)
    try:
        yield server.start(), server.pgdata
    finally:
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Debian's redis-server on 127.0.0.1 with no persistence, in a temp dir."""
    from redis import Redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    workdir = temp_dir("pasar-bench-redis-")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if Redis.from_url(url).ping():
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_cpu_s(pgdata: Path) -> float:
    """CPU seconds used so far by this cluster's postmaster and its backends (live and ended)."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        total = sum(postmaster.cpu_times())  # includes waited-for (ended) backends
        for child in postmaster.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
    except (OSError, ValueError, psutil.Error):
        return float("nan")
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live children."""
    import psutil

    total = 0.0
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        total = sum(process.cpu_times())
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
    return total


def stop_process_tree(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """SIGTERM the process (graceful shutdown), then SIGKILL it and its children if needed."""
    import psutil

    if process.poll() is not None:
        return
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                child.kill()


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `pasar serve` / `pasar worker` process of this benchmark."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PASAR_DATA_DIR": str(data_dir),
        "PASAR_SECRET_KEY": SECRET_KEY,
        "PASAR_HOST": "127.0.0.1",
        # A benchmark is one caller sending thousands of runs: the per-caller limits are off.
        "PASAR_RATE_LIMIT_AUTH": "off",
        "PASAR_RATE_LIMIT_WRITES": "off",
        "PASAR_RATE_LIMIT_RUNS": "off",
    }
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def scripted_config(script: list[dict[str, Any]], delay_ms: int = 0) -> dict[str, Any]:
    return {"model": "scripted", "model_options": {"script": script, "delay_ms": delay_ms}}


async def sign_up(client: Any, email: str = "bench@example.com") -> dict[str, str]:
    """Create a user through REST and return its Authorization header."""
    credentials = {"email": email, "password": PASSWORD}
    response = await client.post("/auth/signup", json=credentials)
    assert response.status_code in (201, 409), response.text
    token = await client.post("/auth/token", json=credentials)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def create_agent_via_api(
    client: Any, headers: dict[str, str], tools: list[str], config: dict[str, Any]
) -> str:
    body = {"name": "bench", "tools": tools, "config": config}
    response = await client.post("/agents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["agent_id"])


def bare_agent(script: list[dict[str, Any]], delay_ms: int, tools: list[Any] | None = None) -> Any:
    """The baseline: `langchain.agents.create_agent` with the same scripted model, no pasar."""
    from langchain.agents import create_agent
    from pasar_core.models.scripted import ScriptedChatModel, ScriptedOptions

    model = ScriptedChatModel(
        options=ScriptedOptions.model_validate({"script": script, "delay_ms": delay_ms})
    )
    return create_agent(model, tools or [])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [value * 1000 for value in seconds]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(percentile(ms, 0.9), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, "recorded_at": datetime.now(UTC).isoformat(), **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join([line, rule, *body])
