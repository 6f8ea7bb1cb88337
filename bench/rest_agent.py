"""REST `GET /agents/{id}` with a JWT: pasar against Starlette + asyncpg sending the same SELECT.

Both run as one process on the same HTTP server (granian by default, `--server uvicorn`), on
one embedded PostgreSQL; wrk (one thread at 64 connections, two at 1,000) alternates between
them in each round; the median round of each is reported with the ratio pasar / bare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import _load as load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 1000])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 9:
        parser.error("--duration must be 1..60 and --rounds 1..9")
    if any(not 1 <= count <= 10_000 for count in args.connections):
        parser.error("--connections must be 1..10000")

    started_load = load.loadavg()
    with load.bench_database() as (database_url, data_dir):
        pasar = load.start_pasar(database_url, data_dir, server=args.server)
        bare = None
        try:
            load.wait_http(pasar.base_url, pasar.process, pasar.log)
            seed = load.seed(pasar.base_url)
            bare = load.start_bare("bare_rest", {
                "BENCH_DATABASE_URL": load.asyncpg_url(database_url), "BENCH_OWNER_ID": seed.owner_id,
            }, data_dir.parent, server=args.server)  # fmt: skip
            load.wait_http(bare.base_url, bare.process, bare.log)
            agent_path = f"/agents/{seed.agent_id}"
            levels = load.compare(
                pasar,
                load.Shape(agent_path, headers=seed.headers),
                bare,
                load.Shape(agent_path),
                connections=args.connections,
                duration_s=args.duration,
                rounds=args.rounds,
            )
        finally:
            pasar.stop()
            if bare is not None:
                bare.stop()
    result = {"server": args.server, "duration_s": args.duration, "rounds": args.rounds,
              "levels": levels, "machine": common.machine(), "loadavg_at_start": started_load}  # fmt: skip
    path = common.write_results(f"rest_agent-{args.server}", result)
    load.print_levels(f"REST GET /agents/{{id}} on {args.server} (median of {args.rounds})", levels)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
