"""Shared by graphql_agent.py and graphql_tools.py: pasar's /graphql against raw graphql-core
(bench/bare/bare_graphql.py: parse and validation cached by text, the same SELECT) for one query."""

from __future__ import annotations

import argparse
import json
from typing import Any

import _common as common
import _load as load


def run(name: str, description: str, query: str, needs_agent: bool) -> None:
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

    started_load = load.loadavg()
    with load.bench_database() as (database_url, data_dir):
        pasar = load.start_pasar(database_url, data_dir, server=args.server)
        bare = None
        try:
            load.wait_http(pasar.base_url, pasar.process, pasar.log)
            seed = load.seed(pasar.base_url)
            bare = load.start_bare("bare_graphql", {
                "BENCH_DATABASE_URL": load.asyncpg_url(database_url), "BENCH_OWNER_ID": seed.owner_id,
            }, data_dir.parent, server=args.server)  # fmt: skip
            load.wait_http(bare.base_url, bare.process, bare.log)
            variables: dict[str, Any] = {"id": seed.agent_id} if needs_agent else {}
            body = json.dumps({"query": query, "variables": variables})
            check(pasar.base_url, body, seed.headers)
            check(bare.base_url, body, {})
            json_headers = {"Content-Type": "application/json"}
            levels = load.compare(
                pasar,
                load.Shape("/graphql", "POST", body, {**json_headers, **seed.headers}),
                bare,
                load.Shape("/graphql", "POST", body, json_headers),
                connections=args.connections,
                duration_s=args.duration,
                rounds=args.rounds,
            )
        finally:
            pasar.stop()
            if bare is not None:
                bare.stop()
    result = {"server": args.server, "query": query, "duration_s": args.duration,
              "rounds": args.rounds, "levels": levels, "machine": common.machine(),
              "loadavg_at_start": started_load}  # fmt: skip
    path = common.write_results(f"{name}-{args.server}", result)
    load.print_levels(f"GraphQL {query} on {args.server} (median of {args.rounds})", levels)
    print(f"\nwritten to {path}")


def check(base_url: str, body: str, headers: dict[str, str]) -> None:
    """Both answer the query with data and no errors before anything is measured."""
    import httpx

    answer = httpx.post(f"{base_url}/graphql", content=body,
                        headers={"Content-Type": "application/json", **headers}).json()  # fmt: skip
    assert "errors" not in answer, answer
    assert answer["data"], answer
