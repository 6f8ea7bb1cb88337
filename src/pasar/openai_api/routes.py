"""`POST /v1/chat/completions` and `GET /v1/models`: a pasar agent as an OpenAI chat model.

The model name is an agent the caller may run (its id, or its name when no other agent of theirs
has it). Runs take the same path as `POST /agents/{id}/execute` (the policy, the run rate
limit, `Idempotency-Key`, `executions.start_execution`: enforcement, approval, events, the
result cache), and the caller authenticates as everywhere (`Authorization: Bearer` with an API
key, what OpenAI SDKs send). Streaming answers follow the run's events as OpenAI's
`chat.completion.chunk` server-sent events; the model's text is streamed as it comes (text a
model writes before calling a tool included), then what the final answer adds. Both follow a
run for at most `PASAR_OPENAI_WAIT_S`; a stream sends `: ping` comments while it is silent
(`PASAR_SSE_PING_S`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pasar_core.accounts.principal import Principal
from pasar_core.agents import service as agents
from pasar_core.agents.service import AgentView
from pasar_core.authz.checks import require
from pasar_core.errors import BadRequest, NotFound, PasarError
from pasar_core.executions import service as executions
from pasar_core.executions.requests import ExecuteRequest, RunParameters
from pasar_core.executions.runtime import Runs
from pasar_core.idempotency import HEADER
from pasar_core.json_input import decode_json
from pasar_core.rate_limits import RouteClass
from pasar_core.services import Services
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pasar.openai_api.errors import (
    ModelNotFound,
    RunNoLongerFollowed,
    RunNotCompleted,
    RunPaused,
    RunStillRunning,
    error_of,
    openai_errors,
)
from pasar.openai_api.models import ChatCompletionRequest, chunk, completion
from pasar.rest.idempotency import claim_of, created_by_first, idempotent
from pasar.rest.limits import Handler, rate_limited
from pasar.rest.requests import caller, read_model, runs_of, services_of
from pasar.sse import PING, paced

PAUSED = ("awaiting_approval", "awaiting_authorization")
MODELS_LIMIT = 200  # agents `GET /v1/models` reads: the newest the caller sees (one statement)
NAMED_LIMIT = 50  # agents of one name read to resolve a model name (more: still ambiguous)


def _may_run(principal: Principal, view: AgentView) -> bool:
    try:
        agents.check_agent(principal, "agents.execute", view)
    except PasarError:
        return False
    return True


async def runnable_agents(services: Services, principal: Principal) -> list[AgentView]:
    """The agents the caller may run among the `MODELS_LIMIT` they see that were made last
    (one bounded read, however many agents they have), newest first."""
    page = await agents.newest_agents(services, principal, limit=MODELS_LIMIT)
    return [view for view in page if _may_run(principal, view)]


async def _agent_id(services: Services, principal: Principal, model: str) -> str:
    """The agent `model` names: its id, else the one runnable agent with that name."""
    try:
        return str(uuid.UUID(model))
    except ValueError:
        pass
    found = await agents.agents_named(services, principal, model, limit=NAMED_LIMIT)
    named = [view for view in found if _may_run(principal, view)]
    if not named:
        raise ModelNotFound(model)
    if len(named) > 1:
        raise BadRequest(
            f"{len(named)} of your agents are named {model[:100]!r}: use an id from GET /v1/models",
            details={"param": "model"},
        )
    return str(named[0].id)


async def list_models(request: Request) -> Response:
    principal = await caller(request)
    views = await runnable_agents(services_of(request), principal)
    data = [
        {"id": str(view.id), "object": "model", "created": int(view.created_at.timestamp()),
         "owned_by": "pasar", "name": view.name}
        for view in views
    ]  # fmt: skip
    return JSONResponse({"object": "list", "data": data})


def _not_completed(view: executions.ExecutionView, runs: Runs) -> RunNotCompleted:
    details: dict[str, Any] = {"execution_id": str(view.id), "status": view.status}
    if view.status in PAUSED:
        if view.auth_url:
            details["auth_url"] = view.auth_url
        what = "approval of a tool call" if view.status == PAUSED[0] else "the user's consent"
        return RunPaused(
            f"execution {view.id} is waiting for {what} ({view.status}); continue it through "
            "pasar's API", details=details,
        )  # fmt: skip
    if not view.finished and runs.draining:
        return RunNoLongerFollowed(
            f"execution {view.id} is still running, but this server is shutting down and "
            "stopped following it; follow it through pasar's API", details=details,
        )  # fmt: skip
    if not view.finished:
        return RunStillRunning(
            f"execution {view.id} is still running after {_wait_s(runs):g} s", details=details
        )
    return RunNotCompleted(
        f"execution {view.id} ended {view.status}: {view.error or 'no answer'}", details=details
    )


def _answer(output: dict[str, Any] | None) -> str:
    message = (output or {}).get("message", "")
    return message if isinstance(message, str) else json.dumps(message)


def _wait_s(runs: Runs) -> float:
    return runs.services.settings.openai_wait_s


async def _start(
    request: Request, principal: Principal, body: ChatCompletionRequest, text: str, *, wait: bool
) -> executions.ExecutionView:
    runs = runs_of(request)
    agent_id = await _agent_id(runs.services, principal, body.model)
    run = ExecuteRequest(
        input=text,
        parameters=RunParameters(wait=wait, timeout_s=_wait_s(runs), thread_id=body.thread_id),
    )
    claim = claim_of(request)  # held in the run's transaction: a retry answers this run
    try:
        return await executions.start_execution(
            runs, principal, agent_id, run, hold=claim.hold if claim else None
        )
    except NotFound:
        raise ModelNotFound(body.model) from None


async def _followed(runs: Runs, principal: Principal, first: str) -> executions.ExecutionView:
    """The run an interrupted request with this Idempotency-Key created, once it ended or
    paused (followed for at most `PASAR_OPENAI_WAIT_S`, as the first request would have)."""
    view = await executions.get_execution(runs, principal, first)
    if not view.finished and view.status not in PAUSED:
        await executions.wait_until_finished(runs, view.id, _wait_s(runs))
        view = await executions.get_execution(runs, principal, view.id)
    return view


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def _stream(
    runs: Runs, principal: Principal, view: executions.ExecutionView, model: str
) -> AsyncIterator[str]:
    completion_id, created = f"chatcmpl-{view.id.hex}", int(view.created_at.timestamp())
    yield _sse(chunk(completion_id, created, model, {"role": "assistant", "content": ""}))
    call_text = last_call_text = ""
    settings = runs.services.settings
    events = paced(runs.hub.subscribe(view.id, 0), ping_s=settings.sse_ping_s,
                   within_s=settings.openai_wait_s)  # fmt: skip
    try:
        async for event in events:
            if event is None:
                yield PING
            elif event.type == "token":
                text = str(event.data.get("text", ""))
                call_text += text
                yield _sse(chunk(completion_id, created, model, {"content": text}))
            elif event.type == "model_call":
                last_call_text, call_text = call_text, ""
            elif event.type == "status" and (
                event.is_terminal or event.data.get("status") in PAUSED
            ):
                break
    except TimeoutError:
        pass  # the run is read below: still running, unless it ended just now
    finally:
        await events.aclose()
    final = await executions.get_execution(runs, principal, view.id)
    if final.status != "succeeded":
        yield _sse(json.loads(bytes(error_of(_not_completed(final, runs)).body)))
        return
    answer, streamed = _answer(final.output), last_call_text + call_text
    rest = answer[len(streamed) :] if answer.startswith(streamed) else ""
    if rest or not streamed:
        yield _sse(chunk(completion_id, created, model, {"content": rest or answer}))
    yield _sse(chunk(completion_id, created, model, {}, finish_reason="stop"))
    yield "data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    principal = await caller(request)
    runs = runs_of(request)
    try:
        body = await read_model(request, ChatCompletionRequest)
        text = body.checked_input()
        if not body.stream:
            first = created_by_first(request)
            if first is not None:  # a retry of a request that created this run, unanswered
                view = await _followed(runs, principal, first)
            else:
                view = await _start(request, principal, body, text, wait=True)
            if view.status != "succeeded":
                raise _not_completed(view, runs)
            pasar = {"execution_id": str(view.id), "thread_id": view.thread_id}
            return JSONResponse(completion(
                f"chatcmpl-{view.id.hex}", int(view.created_at.timestamp()), body.model,
                _answer(view.output), pasar,
            ))  # fmt: skip
        view = await _start(request, principal, body, text, wait=False)
    except PasarError as error:
        # Answered here in OpenAI's shape, so an idempotent replay answers the same; a server
        # failure (a queue down) propagates and releases the key, unless a run was created.
        if error.status >= 500 and not isinstance(error, RunNotCompleted):
            raise
        return error_of(error)
    return StreamingResponse(
        _stream(runs, principal, view, body.model),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _idempotent_unless_streamed(handler: Handler, route: str) -> Handler:
    """`Idempotency-Key` as on every run; a streamed answer cannot be replayed, so a key with
    `stream: true` is refused."""
    keyed = idempotent(handler, route)

    async def endpoint(request: Request) -> Response:
        if request.headers.get(HEADER) is None:
            return await handler(request)
        try:
            data = decode_json(await request.body())
        except PasarError:
            data = None
        if isinstance(data, dict) and data.get("stream") is True:
            raise BadRequest(
                f"{HEADER} is supported without stream; a streamed answer cannot be replayed",
                details={"param": "stream"},
            )
        return await keyed(request)

    return endpoint


def _guarded(handler: Handler, operation: str) -> Handler:
    async def endpoint(request: Request) -> Response:
        require(await caller(request), operation)
        return await handler(request)

    return endpoint


def openai_routes() -> list[Route]:
    """The routes, each behind (in the order a request meets them) OpenAI-shaped errors, the
    policy's role check, a rate limit (runs; the listing as writes) and idempotency (as
    `pasar.rest.routes`)."""
    completions = _idempotent_unless_streamed(chat_completions, "POST /v1/chat/completions")
    completions = rate_limited(completions, RouteClass.RUNS, signed_in=True)
    # Listing pages through every agent of the caller: counted as the writes are.
    models = rate_limited(list_models, RouteClass.WRITES, signed_in=True)
    return [
        Route("/v1/chat/completions", openai_errors(_guarded(completions, "agents.execute")),
              methods=["POST"]),
        Route("/v1/models", openai_errors(_guarded(models, "agents.list")), methods=["GET"]),
    ]  # fmt: skip
