"""HTTP custom tools in agent runs: one request from the server through the SSRF guard, against
a local test server opened by the operator's allow-list (loopback) and the tool's allow_hosts.

No Docker. `outbound` (from the web runs) blocks and reports any traffic that is not loopback;
private and metadata targets are refused by the guard's decision before anything connects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.e2e import test_runs_web
from tests.e2e.runs import call, create_agent, error, execute, result, scripted
from tests.e2e.test_runs_web import Outbound
from tests.support.servers import serve_in_thread

outbound = test_runs_web.outbound  # the autouse fixture that blocks non-loopback traffic

Headers = dict[str, str]
SECRET = "rk_live_canary_7f3a9c"


class Api:
    def __init__(self, base: str, seen: list[dict[str, Any]]) -> None:
        self.base = base
        self.seen = seen


def api_app(seen: list[dict[str, Any]]) -> Starlette:
    async def rate(request: Request) -> Response:
        seen.append({"path": request.url.path, "query": dict(request.query_params),
                     "authorization": request.headers.get("authorization")})  # fmt: skip
        if request.headers.get("authorization") != f"Bearer {SECRET}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        currency = request.path_params["currency"]
        return JSONResponse(
            {"currency": currency, "rate": 1.25, "day": request.query_params["day"]}
        )

    async def order(request: Request) -> Response:
        sent = json.loads(await request.body())
        seen.append({"path": request.url.path, "json": sent})
        return JSONResponse({"order": sent["item"], "quantity": sent["quantity"]}, status_code=201)

    async def broken(request: Request) -> Response:
        return JSONResponse({"error": "down for maintenance"}, status_code=503)

    async def to_metadata(request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    return Starlette(
        routes=[
            Route("/rates/{currency}", rate),
            Route("/orders", order, methods=["POST"]),
            Route("/broken", broken),
            Route("/moved", to_metadata),
        ]
    )


@pytest.fixture
def api() -> Iterator[Api]:
    seen: list[dict[str, Any]] = []
    with serve_in_thread(api_app(seen)) as base:
        yield Api(base, seen)


def http_tool(tool_id: str, url: str, *, allow: list[str], **implementation: Any) -> dict[str, Any]:
    return {
        "id": tool_id,
        "title": tool_id,
        "description": "An HTTP API.",
        "input_schema": {
            "type": "object",
            "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "day": {"type": "string"},
                "item": {"type": "string"},
                "quantity": {"type": "integer"},
            },
        },
        "output_schema": {"type": "object"},
        "effect": "read",
        "timeout_s": 5,
        "network": {"allow_hosts": allow},
        "implementation": {"kind": "http", "url": url, **implementation},
    }


def register(client: TestClient, headers: Headers, definition: dict[str, Any]) -> None:
    response = client.post("/tools", json=definition, headers=headers)
    assert response.status_code == 201, response.text


def tool_results(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in run["steps"] if step["type"] == "tool_result"]


def test_http_tool_with_a_secret_header_and_a_json_body(
    client: TestClient, make_user: Callable[..., Headers], api: Api, outbound: Outbound
) -> None:
    headers = make_user()
    register(client, headers, http_tool(
        "fx:rate", f"{api.base}/rates/{{currency}}", allow=["127.0.0.1"],
        headers={"Authorization": "Bearer {secrets.rates_key}"},
    ))  # fmt: skip
    register(client, headers, http_tool(
        "fx:order", f"{api.base}/orders", allow=["127.0.0.1"], method="POST"
    ))  # fmt: skip
    agent = create_agent(client, headers, ["fx:rate", "fx:order"], scripted(
        call("fx:rate", currency="USD", day="2026-12-01"),
        call("fx:order", item="anchor", quantity=2),
    ))  # fmt: skip
    stored = client.put(
        f"/agents/{agent}/secrets/rates_key", json={"value": SECRET}, headers=headers
    )
    assert stored.status_code in (200, 204), stored.text
    run = execute(client, headers, agent)
    rate, order = tool_results(run)
    assert result(rate) == {"currency": "USD", "rate": 1.25, "day": "2026-12-01"}
    assert result(order) == {"order": "anchor", "quantity": 2}
    assert api.seen[0] == {"path": "/rates/USD", "query": {"day": "2026-12-01"},
                           "authorization": f"Bearer {SECRET}"}  # fmt: skip
    assert api.seen[1] == {"path": "/orders", "json": {"item": "anchor", "quantity": 2}}
    assert SECRET not in json.dumps(run)
    assert outbound.connects  # the calls did go out, to loopback only


def test_http_tool_errors_and_guard_refusals(
    client: TestClient, make_user: Callable[..., Headers], api: Api, outbound: Outbound
) -> None:
    headers = make_user()
    register(client, headers, http_tool("fx:broken", f"{api.base}/broken", allow=["127.0.0.1"]))
    register(client, headers, http_tool("fx:moved", f"{api.base}/moved", allow=["127.0.0.1"]))
    # Loopback, but not in the tool's own allow_hosts: the guard refuses it.
    register(client, headers, http_tool("fx:unlisted", f"{api.base}/broken", allow=[]))
    register(client, headers, http_tool("fx:private", "http://10.1.2.3/x", allow=[]))
    register(client, headers, http_tool(
        "fx:metadata", "http://169.254.169.254/latest/meta-data/", allow=[]
    ))  # fmt: skip
    register(client, headers, http_tool(
        "fx:nosecret", f"{api.base}/rates/{{currency}}", allow=["127.0.0.1"],
        headers={"Authorization": "Bearer {secrets.missing_key}"},
    ))  # fmt: skip
    ids = ["fx:broken", "fx:moved", "fx:unlisted", "fx:private", "fx:metadata", "fx:nosecret"]
    agent = create_agent(client, headers, ids, scripted(
        *(call(tool_id, currency="EUR", day="x") for tool_id in ids)
    ))  # fmt: skip
    errors = {step["tool"]: error(step) for step in tool_results(execute(client, headers, agent))}
    assert errors["fx:broken"].startswith("TOOL_HTTP_STATUS"), errors
    assert "503" in errors["fx:broken"]
    for refused in ("fx:moved", "fx:unlisted", "fx:private", "fx:metadata"):
        assert not errors[refused].startswith("TOOL_HTTP_STATUS"), errors
        assert "refused" in errors[refused].lower() or "not allowed" in errors[refused].lower(), (
            errors
        )
    assert errors["fx:nosecret"].startswith("TOOL_SECRET_MISSING"), errors
    # The test server saw two connections (the broken endpoint and the redirect's first hop);
    # the others were refused before connecting (the rest of `connects` is the database).
    api_port = int(api.base.rsplit(":", 1)[1])
    assert [port for _host, port in outbound.connects].count(api_port) == 2


def test_http_tool_registration_rules(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    headers = make_user()
    cases = [
        http_tool("fx:a", "http://{currency}.example.com/", allow=[]),
        http_tool("fx:b", "http://api.example.com/{unknown}", allow=[]),
        http_tool("fx:c", "ftp://api.example.com/", allow=[]),
        http_tool("fx:d", "http://api.example.com/", allow=["169.254.169.254"]),
        http_tool("fx:e", "http://api.example.com/", allow=[], headers={"Host": "evil"}),
        http_tool("fx:f", "http://api.example.com/", allow=[], headers={"X": "a\r\nB: c"}),
        {**http_tool("fx:g", "http://api.example.com/", allow=[]), "limits": {"memory_mb": 64}},
    ]
    for definition in cases:
        response = client.post("/tools", json=definition, headers=headers)
        assert response.status_code == 422, (definition, response.text)
        assert response.json()["error"]["code"] == "TOOL_DEFINITION_INVALID", response.text


def test_custom_tools_follow_the_approval_policy(
    client: TestClient, make_user: Callable[..., Headers], api: Api, outbound: Outbound
) -> None:
    headers = make_user()
    order = http_tool("fx:order", f"{api.base}/orders", allow=["127.0.0.1"], method="POST")
    register(client, headers, {**order, "effect": "write"})
    config = scripted(
        call("fx:order", item="rope", quantity=1), approval={"require_for": ["write"]}
    )
    agent = create_agent(client, headers, ["fx:order"], config)
    approved: list[dict[str, Any]] = []
    run = execute(client, headers, agent, approved)
    assert [(call_["tool"], call_["args"]) for call_ in approved] == [
        ("fx:order", {"item": "rope", "quantity": 1})
    ], approved
    assert result(tool_results(run)[0]) == {"order": "rope", "quantity": 1}
    assert api.seen == [{"path": "/orders", "json": {"item": "rope", "quantity": 1}}]
