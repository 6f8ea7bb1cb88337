"""Load helpers for the API-speed benchmarks: wrk runs, server processes, the seeded database.

Every server listens on 127.0.0.1 only; wrk is Debian's (`apt-get install -y wrk`). A pasar server
and its bare baseline are started the same way (one process, the same HTTP server) and measured
by the same wrk command in the same invocation, alternating, so their ratio is what counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common

BARE_DIR = common.BENCH_DIR / "bare"

WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def wrk_script(
    method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None
) -> Path:
    """A wrk Lua script sending one request shape and reporting JSON."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    handle, path = tempfile.mkstemp(prefix="pasar-bench-wrk-", suffix=".lua", dir="/tmp")
    with os.fdopen(handle, "w") as out:
        out.write("\n".join(lines) + "\n" + WRK_REPORT)
    return Path(path)


def wrk(
    url: str, script: Path, *, connections: int, duration_s: int, threads: int = 1
) -> dict[str, Any]:
    """One wrk run: requests/s, latency percentiles (ms) and every kind of error."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s",
               "-s", str(script), url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk said:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p90_ms": round(raw["latency_us"]["p90"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 2),
        "errors": sum(errors.values()),
        "error_kinds": {kind: n for kind, n in errors.items() if n},
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median requests/s (a real run, not a mix of fields)."""
    ordered = sorted(runs, key=lambda run: run["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rps_all"] = [run["rps"] for run in runs]
    return chosen


def ratio(pasar: dict[str, Any], bare: dict[str, Any]) -> float:
    return round(pasar["rps"] / bare["rps"], 2) if bare["rps"] else float("nan")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> None:
        common.stop_process_tree(self.process, timeout_s=30)


def wait_http(
    base_url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    path: str = "/healthz",
    timeout_s: float = 180,
) -> float:
    """Seconds until `path` answers 200 (the process must stay up)."""
    import httpx

    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() - started < timeout_s:
            if process.poll() is not None:
                raise SystemExit(f"{base_url} exited:\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(path).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.05)
    raise SystemExit(
        f"{base_url} did not answer {path}:\n{log.read_text(errors='replace')[-3000:]}"
    )


def start_pasar(
    database_url: str | None,
    data_dir: Path,
    *,
    server: str = "granian",
    workers: int = 1,
    **extra: str,
) -> Server:
    """`pasar serve` as its own process (DATABASE_URL unless None: the embedded default)."""
    port = common.free_port()
    env = common.server_env(database_url or "", data_dir, **extra)
    if database_url is None:
        env.pop("DATABASE_URL")
    log = data_dir.parent / f"pasar-{server}-{port}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "pasar", "serve", "--port", str(port), "--server", server,
             "--workers", str(workers), "--log-level", "warning"],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Server(f"pasar ({server})", process, f"http://127.0.0.1:{port}", log)


def start_bare(
    module: str, env: dict[str, str], work_dir: Path, *, server: str = "granian"
) -> Server:
    """A bare app from bench/bare/ as one process on the same HTTP server as pasar's."""
    port = common.free_port()
    log = work_dir / f"bare-{module}-{server}-{port}.log"
    if server == "granian":
        command = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                   "--backlog", "16384", "--log-level", "warning", f"{module}:app"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                   "--loop", "uvloop", "--http", "httptools", "--backlog", "16384",
                   "--log-level", "warning", "--no-access-log", f"{module}:app"]  # fmt: skip
    full_env = {**os.environ, **env, "PYTHONPATH": str(BARE_DIR)}
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, env=full_env, stdout=handle, stderr=subprocess.STDOUT,
                                   cwd=BARE_DIR)  # fmt: skip
    return Server(f"bare {module} ({server})", process, f"http://127.0.0.1:{port}", log)


@dataclass(frozen=True)
class Seed:
    """What the benchmarks read: a user's token and one of its agents."""

    headers: dict[str, str]
    agent_id: str
    owner_id: str


AGENT = {
    "name": "bench reader",
    "tools": ["txt:read", "txt:write", "csv:read"],
    "config": {"model": "openai:gpt-4o-mini", "system_prompt": "Answer briefly."},
}


def seed(base_url: str) -> Seed:
    import asyncio

    import httpx
    import jwt

    async def make() -> Seed:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            headers = await common.sign_up(client)
            created = await client.post("/agents", json=AGENT, headers=headers)
            assert created.status_code == 201, created.text
            token = headers["Authorization"].removeprefix("Bearer ")
            owner = jwt.decode(token, options={"verify_signature": False})["sub"]
            return Seed(headers, str(created.json()["agent_id"]), owner)

    return asyncio.run(make())


@contextlib.contextmanager
def bench_database() -> Iterator[tuple[str, Path]]:
    """The embedded PostgreSQL of one benchmark run and a work directory beside it."""
    work_dir = common.temp_dir("pasar-bench-speed-")
    data_dir = work_dir / "data"
    data_dir.mkdir()
    try:
        with common.embedded_postgres() as (database_url, _pgdata):
            yield database_url, data_dir
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


@dataclass(frozen=True)
class Side:
    """A seeded pasar and its bare baseline, both answering, on one fresh database."""

    pasar: Server
    bare: Server
    seed: Seed


@contextlib.contextmanager
def pasar_beside_bare(
    bare_app: str, *, server: str, pool_timeout_s: float | None = None
) -> Iterator[Side]:
    """Start both (the bare app reads the seeded user's rows), stop both afterwards."""
    with bench_database() as (database_url, data_dir):
        if pool_timeout_s is None:
            pasar = start_pasar(database_url, data_dir, server=server)
        else:
            pasar = start_pasar(database_url, data_dir, server=server,
                                PASAR_DB_POOL_TIMEOUT=str(pool_timeout_s))  # fmt: skip
        bare = None
        try:
            wait_http(pasar.base_url, pasar.process, pasar.log)
            seeded = seed(pasar.base_url)
            bare = start_bare(bare_app, {
                "BENCH_DATABASE_URL": asyncpg_url(database_url), "BENCH_OWNER_ID": seeded.owner_id,
            }, data_dir.parent, server=server)  # fmt: skip
            wait_http(bare.base_url, bare.process, bare.log)
            yield Side(pasar, bare, seeded)
        finally:
            pasar.stop()
            if bare is not None:
                bare.stop()


def wrk_arguments(description: str) -> argparse.Namespace:
    """The options every wrk comparison takes, checked to stay bounded."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 1000])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 9:
        parser.error("--duration must be 1..60 and --rounds 1..9")
    if any(not 1 <= count <= 10_000 for count in args.connections):
        parser.error("--connections must be 1..10000")
    return args


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3)


@dataclass(frozen=True)
class Shape:
    """One request as wrk sends it."""

    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] | None = None


def compare(
    pasar: Server,
    pasar_shape: Shape,
    bare: Server,
    bare_shape: Shape,
    *,
    connections: list[int],
    duration_s: int,
    rounds: int,
    warmup_s: int = 2,
) -> dict[str, Any]:
    """wrk against pasar and its baseline, alternating within each round, at each level of
    connections; the median round of each, and the ratio pasar / bare."""
    scripts = {
        "pasar": wrk_script(pasar_shape.method, pasar_shape.body, pasar_shape.headers),
        "bare": wrk_script(bare_shape.method, bare_shape.body, bare_shape.headers),
    }
    urls = {"pasar": pasar.base_url + pasar_shape.path, "bare": bare.base_url + bare_shape.path}
    try:
        for name in ("bare", "pasar"):  # warm: caches, prepared statements, pool connections
            wrk(urls[name], scripts[name], connections=min(connections), duration_s=warmup_s)
        levels: dict[str, Any] = {}
        for count in connections:
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "pasar": []}
            for round_no in range(rounds):
                order = ("bare", "pasar") if round_no % 2 == 0 else ("pasar", "bare")
                for name in order:
                    threads = 1 if count <= 128 else 2
                    runs[name].append(wrk(urls[name], scripts[name], connections=count,
                                          duration_s=duration_s, threads=threads))  # fmt: skip
            chosen = {name: median_run(found) for name, found in runs.items()}
            levels[str(count)] = {**chosen, "ratio": ratio(chosen["pasar"], chosen["bare"]),
                                  "loadavg": loadavg()}  # fmt: skip
        return levels
    finally:
        for script in scripts.values():
            script.unlink(missing_ok=True)


def print_levels(title: str, levels: dict[str, Any]) -> None:
    rows = []
    for count, level in levels.items():
        for name in ("pasar", "bare"):
            run = level[name]
            rows.append([count, name, run["rps"], run["p50_ms"], run["p99_ms"], run["errors"],
                         f"{level['ratio']}x" if name == "pasar" else "", level["loadavg"][0]])  # fmt: skip
    print(f"\n{title}")
    print(common.table(["connections", "server", "req/s", "p50 ms", "p99 ms", "errors",
                        "ratio", "load"], rows))  # fmt: skip


def asyncpg_url(database_url: str) -> str:
    """The embedded server's URL as asyncpg takes it."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://")
