"""An agent's config versions and the caller's threads on it:
GET /agents/{id}/versions[/{n}], GET /agents/{id}/versions/{a}/diff/{b},
POST /agents/{id}/versions/{n}/rollback, GET|DELETE /agents/{id}/threads[/{thread_id}]."""

from __future__ import annotations

from pasar_core.agents import versions
from pasar_core.errors import NotFound
from pasar_core.executions import threads
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import (
    AgentSavedOut,
    ThreadListOut,
    ThreadOut,
    ThreadTurnsOut,
    TurnOut,
    VersionDiffOut,
    VersionListOut,
    VersionOut,
)
from pasar.rest.requests import caller, query_int, services_of
from pasar.rest.responses import json_response


def _number(request: Request, name: str) -> int:
    """A version number from the path; anything else is a version that does not exist."""
    raw = request.path_params[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise NotFound(f"no version {raw[:20]!r}")
    return int(raw)


def _page(request: Request, high: int) -> tuple[int, int]:
    limit = query_int(request, "limit", 50, low=1, high=high)
    return limit, query_int(request, "offset", 0, low=0, high=1_000_000)


async def list_versions(request: Request) -> Response:
    principal = await caller(request)
    limit, offset = _page(request, versions.MAX_PAGE)
    found = await versions.list_versions(
        services_of(request), principal, request.path_params["agent_id"],
        limit=limit, offset=offset,
    )  # fmt: skip
    return json_response(VersionListOut(versions=[VersionOut.of(view) for view in found]))


async def get_version(request: Request) -> Response:
    principal = await caller(request)
    view = await versions.get_version(
        services_of(request), principal, request.path_params["agent_id"], _number(request, "n")
    )
    return json_response(VersionOut.of(view))


async def diff_versions(request: Request) -> Response:
    principal = await caller(request)
    found = await versions.diff_versions(
        services_of(request), principal, request.path_params["agent_id"],
        _number(request, "a"), _number(request, "b"),
    )  # fmt: skip
    return json_response(VersionDiffOut.of(found))


async def rollback(request: Request) -> Response:
    principal = await caller(request)
    saved = await versions.rollback(
        services_of(request), principal, request.path_params["agent_id"], _number(request, "n")
    )
    return json_response(AgentSavedOut.of(saved))


async def list_threads(request: Request) -> Response:
    principal = await caller(request)
    limit, offset = _page(request, threads.MAX_PAGE)
    found = await threads.list_threads(
        services_of(request), principal, request.path_params["agent_id"],
        limit=limit, offset=offset,
    )  # fmt: skip
    return json_response(ThreadListOut(threads=[ThreadOut.of(view) for view in found]))


async def read_thread(request: Request) -> Response:
    principal = await caller(request)
    limit, offset = _page(request, threads.MAX_PAGE)
    params = request.path_params
    turns = await threads.read_thread(
        services_of(request), principal, params["agent_id"], params["thread_id"],
        limit=limit, offset=offset,
    )  # fmt: skip
    return json_response(
        ThreadTurnsOut(thread_id=params["thread_id"], turns=[TurnOut.of(t) for t in turns])
    )


async def delete_thread(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    await threads.delete_thread(
        services_of(request), principal, params["agent_id"], params["thread_id"]
    )
    return Response(status_code=204)
