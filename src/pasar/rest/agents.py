"""POST /agents, GET /agents, GET|PUT|DELETE /agents/{id}."""

from __future__ import annotations

from pasar_core.agents import secrets
from pasar_core.agents import service as agents
from pasar_core.agents.config import AgentInput, AgentPatch
from pasar_core.strategies import strategy_catalogue
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.models import (
    AgentListOut,
    AgentOut,
    AgentSavedOut,
    SecretNamesOut,
    StrategyListOut,
    StrategyOut,
)
from pasar.rest.requests import caller, query_int, read_model, services_of
from pasar.rest.responses import json_response


async def create_agent(request: Request) -> Response:
    principal = await caller(request)
    data = await read_model(request, AgentInput)
    saved = await agents.create_agent(services_of(request), principal, data)
    return json_response(AgentSavedOut.of(saved), 201)


async def list_agents(request: Request) -> Response:
    principal = await caller(request)
    limit = query_int(request, "limit", 50, low=1, high=agents.MAX_PAGE)
    offset = query_int(request, "offset", 0, low=0, high=1_000_000)
    views = await agents.list_agents(services_of(request), principal, limit=limit, offset=offset)
    return json_response(AgentListOut(agents=[AgentOut.of(view) for view in views]))


async def get_agent(request: Request) -> Response:
    principal = await caller(request)
    view = await agents.get_agent(services_of(request), principal, request.path_params["agent_id"])
    return json_response(AgentOut.of(view))


async def update_agent(request: Request) -> Response:
    principal = await caller(request)
    patch = await read_model(request, AgentPatch)
    saved = await agents.update_agent(
        services_of(request), principal, request.path_params["agent_id"], patch
    )
    return json_response(AgentSavedOut.of(saved))


async def delete_agent(request: Request) -> Response:
    principal = await caller(request)
    await agents.delete_agent(services_of(request), principal, request.path_params["agent_id"])
    return Response(status_code=204)


async def list_secrets(request: Request) -> Response:
    principal = await caller(request)
    names = await secrets.secret_names(
        services_of(request), principal, request.path_params["agent_id"]
    )
    return json_response(SecretNamesOut(names=names))


async def put_secret(request: Request) -> Response:
    principal = await caller(request)
    body = await read_model(request, secrets.SecretValue)
    params = request.path_params
    await secrets.set_secret(
        services_of(request), principal, params["agent_id"], params["name"], body.value
    )
    return Response(status_code=204)


async def delete_secret(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    await secrets.delete_secret(services_of(request), principal, params["agent_id"], params["name"])
    return Response(status_code=204)


async def list_strategies(request: Request) -> Response:
    """The installed reasoning strategies an agent's `config.strategy` may name."""
    views = strategy_catalogue(services_of(request).registry)
    return json_response(StrategyListOut(strategies=[StrategyOut.model_validate(v) for v in views]))
