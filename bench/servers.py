"""uvicorn (uvloop + httptools) against granian, one worker process each: a bare Starlette JSON
endpoint and pasar's `GET /agents/{id}`, at 64 and 1,000 connections, alternating in each round.
This is how `pasar serve` chose its default server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import _load as load

SERVERS = ("uvicorn", "granian")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 1000])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 9:
        parser.error("--duration must be 1..60 and --rounds 1..9")

    started_load = load.loadavg()
    results: dict[str, Any] = {}
    with load.bench_database() as (database_url, data_dir):
        started: list[load.Server] = []
        try:
            targets: dict[str, tuple[load.Server, load.Shape]] = {}
            for server in SERVERS:
                pasar = load.start_pasar(database_url, data_dir, server=server)
                started.append(pasar)
                load.wait_http(pasar.base_url, pasar.process, pasar.log)
                bare = load.start_bare("bare_rest", {}, data_dir.parent, server=server)
                started.append(bare)
                load.wait_http(bare.base_url, bare.process, bare.log)
                targets[f"bare json/{server}"] = (bare, load.Shape("/json"))
                targets[f"pasar agent/{server}"] = (pasar, None)  # type: ignore[assignment]
            seed = load.seed(targets["pasar agent/granian"][0].base_url)
            for server in SERVERS:
                pasar = targets[f"pasar agent/{server}"][0]
                targets[f"pasar agent/{server}"] = (
                    pasar,
                    load.Shape(f"/agents/{seed.agent_id}", headers=seed.headers),
                )
            scripts = {name: load.wrk_script(shape.method, shape.body, shape.headers)
                       for name, (_, shape) in targets.items()}  # fmt: skip
            for name, (server_, shape) in targets.items():
                load.wrk(server_.base_url + shape.path, scripts[name], connections=64, duration_s=2)
            for app in ("bare json", "pasar agent"):
                for count in args.connections:
                    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SERVERS}
                    for round_no in range(args.rounds):
                        order = SERVERS if round_no % 2 == 0 else SERVERS[::-1]
                        for server in order:
                            target, shape = targets[f"{app}/{server}"]
                            runs[server].append(load.wrk(
                                target.base_url + shape.path, scripts[f"{app}/{server}"],
                                connections=count, duration_s=args.duration,
                                threads=1 if count <= 128 else 2))  # fmt: skip
                    results[f"{app}/{count}"] = {
                        server: load.median_run(found) for server, found in runs.items()
                    } | {"loadavg": load.loadavg()}
        finally:
            for server_ in started:
                server_.stop()
    path = common.write_results("servers", {"levels": results, "machine": common.machine(),
                                            "loadavg_at_start": started_load})  # fmt: skip
    rows = []
    for key, level in results.items():
        app, count = key.rsplit("/", 1)
        for server in SERVERS:
            run = level[server]
            rows.append([app, count, server, run["rps"], run["p50_ms"], run["p99_ms"],
                         run["errors"], run["error_kinds"] or "", level["loadavg"][0]])  # fmt: skip
    print(f"\nuvicorn against granian (median of {args.rounds})")
    print(common.table(["app", "connections", "server", "req/s", "p50 ms", "p99 ms", "errors",
                        "kinds", "load"], rows))  # fmt: skip
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
