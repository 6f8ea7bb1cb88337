"""The REST baseline: Starlette + asyncpg answering `GET /agents/{id}` with the same SELECT as
pasar's (agent, its tool ids in order, owner checked), no auth, no ORM; plus a bare JSON
endpoint for comparing HTTP servers. Configured by BENCH_DATABASE_URL and BENCH_OWNER_ID."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SELECT_AGENT = """
SELECT a.id, a.name, a.config, a.created_at, a.updated_at,
       (SELECT array_agg(t.tool_id ORDER BY t.position) FROM agent_tools t
        WHERE t.agent_id = a.id) AS tool_ids
FROM agents a WHERE a.id = $1 AND a.owner_id = $2
"""
OWNER = uuid.UUID(os.environ.get("BENCH_OWNER_ID", "00000000-0000-0000-0000-000000000000"))


async def init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                    schema="pg_catalog")  # fmt: skip


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
    dsn = os.environ.get("BENCH_DATABASE_URL")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, init=init) if dsn else None
    try:
        yield {"pool": pool}
    finally:
        if pool is not None:
            await pool.close()


async def get_agent(request: Request) -> Response:
    try:
        agent_id = uuid.UUID(request.path_params["agent_id"])
    except ValueError:
        return JSONResponse({"error": "not found"}, status_code=404)
    row = await request.state.pool.fetchrow(SELECT_AGENT, agent_id, OWNER)
    if row is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({
        "id": str(row["id"]), "name": row["name"], "tools": list(row["tool_ids"] or ()),
        "config": row["config"], "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    })  # fmt: skip


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/agents/{agent_id}", get_agent), Route("/json", hello),
            Route("/healthz", healthz)],
    lifespan=lifespan,
)  # fmt: skip
