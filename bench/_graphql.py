"""Shared by graphql_agent.py and graphql_tools.py: pasar's /graphql against raw graphql-core
(bench/bare/bare_graphql.py: parse and validation cached by text, the same SELECT) for one query."""

from __future__ import annotations

import json
from typing import Any

import _common as common
import _load as load


def run(name: str, description: str, query: str, needs_agent: bool) -> None:
    args = load.wrk_arguments(description)
    started_load = load.loadavg()
    with load.pasar_beside_bare("bare_graphql", server=args.server) as side:
        variables: dict[str, Any] = {"id": side.seed.agent_id} if needs_agent else {}
        body = json.dumps({"query": query, "variables": variables})
        check(side.pasar.base_url, body, side.seed.headers)
        check(side.bare.base_url, body, {})
        json_headers = {"Content-Type": "application/json"}
        levels = load.compare(
            side.pasar,
            load.Shape("/graphql", "POST", body, {**json_headers, **side.seed.headers}),
            side.bare,
            load.Shape("/graphql", "POST", body, json_headers),
            connections=args.connections,
            duration_s=args.duration,
            rounds=args.rounds,
        )
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
