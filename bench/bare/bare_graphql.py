"""The GraphQL baseline: raw graphql-core (no Strawberry) on Starlette, with parsed and validated
documents cached by text, the same SELECT as pasar's for `agent(id)` through asyncpg, and the
tool catalogue as plain dicts built once at start. No auth, no limits, no error formatting.
Configured by BENCH_DATABASE_URL and BENCH_OWNER_ID."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from bare_rest import OWNER, SELECT_AGENT, init
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    execute,
    parse,
    validate,
)  # fmt: skip
from graphql.language import DocumentNode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def tool_catalogue() -> list[dict[str, Any]]:
    from pasar_core.catalog import list_tools
    from pasar_core.plugins import build_plugin_manager
    from pasar_core.registry import build_registry

    return list_tools(build_registry(build_plugin_manager()))


TOOLS = [{**view, "effect": view["effect"].upper()} for view in tool_catalogue()]


async def resolve_agent(root: Any, info: Any, id: str) -> dict[str, Any] | None:
    row = await info.context["pool"].fetchrow(SELECT_AGENT, uuid.UUID(id), OWNER)
    if row is None:
        return None
    return {"id": str(row["id"]), "name": row["name"], "tools": list(row["tool_ids"] or ()),
            "config": json.dumps(row["config"]), "createdAt": row["created_at"].isoformat()}  # fmt: skip


TOOL = GraphQLObjectType("Tool", {
    "id": GraphQLField(GraphQLNonNull(GraphQLString)),
    "title": GraphQLField(GraphQLNonNull(GraphQLString)),
    "effect": GraphQLField(GraphQLNonNull(GraphQLString)),
    "family": GraphQLField(GraphQLNonNull(GraphQLString)),
})  # fmt: skip
AGENT = GraphQLObjectType("Agent", {
    "id": GraphQLField(GraphQLNonNull(GraphQLID)),
    "name": GraphQLField(GraphQLNonNull(GraphQLString)),
    "tools": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString)))),
    "config": GraphQLField(GraphQLNonNull(GraphQLString)),
    "createdAt": GraphQLField(GraphQLNonNull(GraphQLString)),
})  # fmt: skip
SCHEMA = GraphQLSchema(GraphQLObjectType("Query", {
    "tools": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(TOOL))),
                          resolve=lambda root, info: TOOLS),
    "agent": GraphQLField(AGENT, args={"id": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                          resolve=resolve_agent),
}))  # fmt: skip

DOCUMENTS: dict[str, tuple[DocumentNode, list[Any]]] = {}


def checked(query: str) -> tuple[DocumentNode, list[Any]]:
    """Parse and validate once per document text."""
    found = DOCUMENTS.get(query)
    if found is None:
        document = parse(query)
        found = DOCUMENTS[query] = (document, validate(SCHEMA, document))
    return found


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
    dsn = os.environ.get("BENCH_DATABASE_URL")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, init=init) if dsn else None
    try:
        yield {"pool": pool}
    finally:
        if pool is not None:
            await pool.close()


async def graphql_endpoint(request: Request) -> Response:
    body = await request.json()
    document, errors = checked(body["query"])
    if errors:
        return JSONResponse({"errors": [error.formatted for error in errors]}, status_code=400)
    outcome = execute(SCHEMA, document, variable_values=body.get("variables"),
                      context_value={"pool": request.state.pool})  # fmt: skip
    result = await outcome if inspect.isawaitable(outcome) else outcome
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    return JSONResponse(answer)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/graphql", graphql_endpoint, methods=["POST"]),
                        Route("/healthz", healthz)], lifespan=lifespan)  # fmt: skip
