"""REST `GET /agents/{id}` with a JWT: pasar against Starlette + asyncpg sending the same SELECT.

Both run as one process on the same HTTP server (granian by default, `--server uvicorn`), on
one embedded PostgreSQL; wrk (one thread at 64 connections, two at 1,000) alternates between
them in each round; the median round of each is reported with the ratio pasar / bare.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import _load as load


def main() -> None:
    args = load.wrk_arguments(__doc__.split("\n")[0])
    started_load = load.loadavg()
    with load.pasar_beside_bare("bare_rest", server=args.server) as side:
        agent_path = f"/agents/{side.seed.agent_id}"
        levels = load.compare(
            side.pasar,
            load.Shape(agent_path, headers=side.seed.headers),
            side.bare,
            load.Shape(agent_path),
            connections=args.connections,
            duration_s=args.duration,
            rounds=args.rounds,
        )
    result = {"server": args.server, "duration_s": args.duration, "rounds": args.rounds,
              "levels": levels, "machine": common.machine(), "loadavg_at_start": started_load}  # fmt: skip
    path = common.write_results(f"rest_agent-{args.server}", result)
    load.print_levels(f"REST GET /agents/{{id}} on {args.server} (median of {args.rounds})", levels)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
