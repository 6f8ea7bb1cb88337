"""Start-up: `pasar --help`, `import pasar`, and `pasar serve` to its first 200 on /healthz,
cold (a fresh data directory: initdb of the embedded PostgreSQL) and warm (the same directory
again), against the interpreter's own start and a bare Starlette app on the same server.

Each serve is stopped with SIGTERM; the script checks that the embedded PostgreSQL stopped too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import _load as load


def timed(command: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "all_s": [round(t, 3) for t in times]}


def serve_once(data_dir: Path, server: str, workers: int) -> dict[str, Any]:
    started = time.monotonic()
    pasar = load.start_pasar(None, data_dir, server=server, workers=workers)
    try:
        load.wait_http(pasar.base_url, pasar.process, pasar.log)
        first_200_s = time.monotonic() - started
    finally:
        pasar.process.terminate()  # SIGTERM, as a service manager stops it
        code = pasar.process.wait(60)
    pid_file = data_dir / "postgres" / "pgdata" / "postmaster.pid"
    return {"first_200_s": round(first_200_s, 2), "exit_code": code,
            "postgres_stopped": not pid_file.exists()}  # fmt: skip


def bare_once(server: str) -> float:
    work_dir = common.temp_dir("pasar-bench-bare-start-")
    started = time.monotonic()
    bare = load.start_bare("bare_rest", {}, work_dir, server=server)
    try:
        load.wait_http(bare.base_url, bare.process, bare.log)
        return round(time.monotonic() - started, 2)
    finally:
        bare.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.runs <= 9 or not 1 <= args.workers <= 8:
        parser.error("--runs must be 1..9 and --workers 1..8")

    started_load = load.loadavg()
    python = sys.executable
    # Measured with bytecode, as an installed server runs: Python writes it on the first import
    # (warmed here) unless PYTHONDONTWRITEBYTECODE is set, which some shells export. Importing
    # without any bytecode (compiling every module from source) is measured on its own.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([python, "-c", "import pasar.app, pasar.lifecycle, granian"], check=True)
    no_bytecode_dir = common.temp_dir("pasar-bench-no-bytecode-")
    no_bytecode = {**os.environ, "PYTHONPYCACHEPREFIX": str(no_bytecode_dir)}
    result: dict[str, Any] = {
        "bytecode": "compiled (written by a warm-up import)",
        "import_app_without_bytecode": timed(
            [python, "-B", "-c", "import pasar.app, pasar.lifecycle"], args.runs, no_bytecode
        ),
        "python_pass": timed([python, "-c", "pass"], args.runs),
        "import_pasar": timed([python, "-c", "import pasar"], args.runs),
        "pasar_help": timed([python, "-m", "pasar", "--help"], args.runs),
        "import_app": timed([python, "-c", "import pasar.app, pasar.lifecycle"], args.runs),
        "bare_first_200_s": [bare_once(args.server) for _ in range(args.runs)],
    }
    cold, warm = [], []
    for _ in range(args.runs):
        work_dir = common.temp_dir("pasar-bench-start-")
        data_dir = work_dir / "data"
        data_dir.mkdir()
        try:
            cold.append(serve_once(data_dir, args.server, args.workers))
            warm.append(serve_once(data_dir, args.server, args.workers))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    shutil.rmtree(no_bytecode_dir, ignore_errors=True)
    result |= {"cold": cold, "warm": warm, "server": args.server, "workers": args.workers,
               "machine": common.machine(), "loadavg_at_start": started_load,
               "loadavg_at_end": load.loadavg()}  # fmt: skip
    path = common.write_results(f"startup-{args.server}-w{args.workers}", result)

    def med(runs: list[dict[str, Any]]) -> float:
        return round(float(statistics.median(run["first_200_s"] for run in runs)), 2)

    rows = [
        ["python -c pass", result["python_pass"]["median_s"]],
        ["python -c 'import pasar'", result["import_pasar"]["median_s"]],
        ["pasar --help", result["pasar_help"]["median_s"]],
        ["import pasar.app (everything a worker loads)", result["import_app"]["median_s"]],
        ["the same without bytecode (every module compiled)",
         result["import_app_without_bytecode"]["median_s"]],
        [f"bare Starlette app on {args.server}: first 200", statistics.median(result["bare_first_200_s"])],
        [f"pasar serve warm ({args.workers} worker): first 200 on /healthz", med(warm)],
        ["pasar serve cold (initdb): first 200 on /healthz", med(cold)],
    ]  # fmt: skip
    print(f"\nstart-up, median of {args.runs} (load {started_load[0]} -> {load.loadavg()[0]})")
    print(common.table(["what", "seconds"], rows))
    stopped = all(run["postgres_stopped"] and run["exit_code"] == 0 for run in cold + warm)
    print(f"\nSIGTERM stopped every server and its embedded PostgreSQL: {stopped}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
