"""POST /agents/{id}/execute, GET /executions/{id}, its events (SSE), cancel, and listing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from pasar_core.errors import BadRequest
from pasar_core.executions import service as executions
from pasar_core.executions.decisions import ApprovalDecision
from pasar_core.executions.requests import ExecuteRequest
from pasar_core.executions.webhooks import webhook_secret
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pasar.rest.idempotency import claim_of, created_by_first
from pasar.rest.models import ExecutionListOut, ExecutionOut, WebhookSecretOut
from pasar.rest.requests import caller, query_int, read_model, runs_of, services_of
from pasar.rest.responses import json_response
from pasar.sse import PING, paced


async def execute(request: Request) -> Response:
    principal = await caller(request)
    first = created_by_first(request)
    if first is not None:  # a retry of a request that created this run and never answered
        view = await executions.get_execution(runs_of(request), principal, first)
        return json_response(ExecutionOut.of(view), 200 if view.finished else 202)
    body = await read_model(request, ExecuteRequest)
    claim = claim_of(request)
    view = await executions.start_execution(
        runs_of(request), principal, request.path_params["agent_id"], body,
        hold=claim.hold if claim else None,
    )  # fmt: skip
    return json_response(ExecutionOut.of(view), 200 if view.finished else 202)


async def get_execution(request: Request) -> Response:
    principal = await caller(request)
    view = await executions.get_execution(
        runs_of(request), principal, request.path_params["execution_id"]
    )
    return json_response(ExecutionOut.of(view))


async def list_executions(request: Request) -> Response:
    principal = await caller(request)
    first = query_int(request, "first", 20, low=1, high=executions.MAX_PAGE)
    views, cursor = await executions.list_executions(
        runs_of(request), principal, request.path_params["agent_id"],
        first=first, after=request.query_params.get("after"),
    )  # fmt: skip
    return json_response(
        ExecutionListOut(executions=[ExecutionOut.of(v) for v in views], next_cursor=cursor)
    )


async def cancel(request: Request) -> Response:
    principal = await caller(request)
    view = await executions.cancel_execution(
        runs_of(request), principal, request.path_params["execution_id"]
    )
    return json_response(ExecutionOut.of(view))


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest("Last-Event-ID must be a non-negative integer")
    return int(raw)


async def events(request: Request) -> Response:
    """Server-sent events: every step in order, `: ping` while silent (`PASAR_SSE_PING_S`);
    resume with `Last-Event-ID`."""
    principal = await caller(request)
    runs = runs_of(request)
    view = await executions.get_execution(runs, principal, request.path_params["execution_id"])
    after = _last_event_id(request)
    hub, ping_s = runs.hub, runs.services.settings.sse_ping_s

    async def stream() -> AsyncIterator[str]:
        yield f"retry: 2000\n: execution {view.id}\n\n"
        async with contextlib.aclosing(
            paced(hub.subscribe(view.id, after), ping_s=ping_s)
        ) as events:
            async for event in events:
                if event is None:
                    yield PING
                    continue
                lines = [f"event: {event.type}"]
                if event.seq is not None:
                    lines.append(f"id: {event.seq}")
                lines.append(f"data: {json.dumps(event.data, default=str)}")
                yield "\n".join(lines) + "\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def decide_approval(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, ApprovalDecision)
    view = await executions.decide_approval(
        runs_of(request), principal, request.path_params["execution_id"], body
    )
    return json_response(ExecutionOut.of(view), 200 if view.finished else 202)


async def get_webhook_secret(request: Request) -> Response:
    principal = await caller(request)
    secret = webhook_secret(services_of(request).tokens.secret, principal.user_id)
    return json_response(WebhookSecretOut(secret=secret))
