"""GET /metrics: Prometheus text with request counts and executions by status."""

from __future__ import annotations

import asyncio
import re
import string
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.db import engine_of
from pasar_core.testing import TEST_PASSWORD
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, run_tools
from tests.support.redis_server import redis_server

PASSWORD = TEST_PASSWORD
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def make_user_in() -> Callable[[TestClient], dict[str, str]]:
    def make(client: TestClient) -> dict[str, str]:
        credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make


def samples(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_and_executions(client: TestClient, make_user) -> None:
    headers = make_user()
    config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
    agent_id = client.post("/agents", json={"name": "m", "config": config}, headers=headers).json()[
        "agent_id"
    ]
    for _ in range(2):
        assert (
            client.post(
                f"/agents/{agent_id}/execute", json={"input": "x"}, headers=headers
            ).status_code
            == 200
        )
    client.get(f"/agents/{agent_id}/nope", headers=headers)
    found = samples(client)
    assert found[("pasar_executions", (("status", "succeeded"),))] == 2
    execute = (("method", "POST"), ("route", "/agents/{agent_id}/execute"), ("status", "200"))
    assert found[("pasar_http_requests_total", execute)] == 2
    missing = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert found[("pasar_http_requests_total", missing)] == 1
    assert found[("pasar_tools", ())] >= 4
    assert (
        "pasar_http_request_seconds_count",
        (("method", "POST"), ("route", "/agents/{agent_id}/execute")),
    ) in found


def test_the_pages_files_are_one_route(client: TestClient) -> None:
    page = client.get("/docs").text
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert client.get(url).status_code == 200
    client.get("/static/not-the-digest/x.js")
    found = samples(client)
    files = (("method", "GET"), ("route", "/static/{file}"), ("status", "200"))
    assert found[("pasar_http_requests_total", files)] == 3  # swagger's script, css, start.js
    assert not [labels for _, labels in found if any("/static/" in v and "{file}" not in v
                                                     for _, v in labels)]  # fmt: skip


def route_templates(client: TestClient) -> set[str]:
    app: Any = client.app
    return {route.path for route in app.routes if isinstance(route, Route | WebSocketRoute)}


def labels_of(found: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for sample, labels in found if sample == name}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.lists(
        st.text(alphabet=string.ascii_letters + string.digits + "-_.~%{}", min_size=1, max_size=20),
        min_size=1,
        max_size=5,
    )
)
def test_route_labels_are_templates_whatever_the_path(client: TestClient, path: list[str]) -> None:
    for prefix in ("/", "/agents/", "/files/", "/static/", "/executions/", "/auth/"):
        client.get(prefix + "/".join(path))
    allowed = route_templates(client) | {"unmatched", "/static/{file}"}
    routes = labels_of(samples(client), "pasar_http_requests_total", "route")
    assert routes <= allowed, routes - allowed
    assert len(routes) <= len(allowed)


def test_file_downloads_and_ids_are_one_label_each(client: TestClient, make_user) -> None:
    headers = make_user()
    for _ in range(3):
        client.get(f"/files/reports/{uuid.uuid4().hex}.csv", headers=headers)
        client.get(f"/agents/{uuid.uuid4()}", headers=headers)
        client.get(f"/nowhere/{uuid.uuid4().hex}")
    found = samples(client)
    get = ("method", "GET")
    assert (
        found[
            ("pasar_http_requests_total", (get, ("route", "/files/{path:path}"), ("status", "404")))
        ]
        == 3
    )
    assert (
        found[
            ("pasar_http_requests_total", (get, ("route", "/agents/{agent_id}"), ("status", "404")))
        ]
        == 3
    )
    assert (
        found[("pasar_http_requests_total", (get, ("route", "unmatched"), ("status", "404")))] == 3
    )
    errors = (get, ("route", "unmatched"), ("status_class", "4xx"))
    assert found[("pasar_http_errors_total", errors)] == 3
    assert not [v for _, labels in found for _, v in labels if "reports/" in v or "nowhere" in v]


def graphql(client: TestClient, query: str, name: str | None = None, **headers: str) -> None:
    body: dict[str, Any] = {"query": query}
    if name is not None:
        body["operationName"] = name
    client.post("/graphql", json=body, headers=headers)


def test_graphql_operations_are_labelled_by_validated_names(client: TestClient, make_user) -> None:
    auth = make_user()
    graphql(client, "query Health { me { id } }", **auth)
    graphql(client, "query Health { me { id } }", **auth)
    graphql(client, "{ me { id } }", **auth)
    graphql(client, "query Forged { noSuchField }", **auth)  # does not validate: name unused
    # Refused before it runs (Strawberry's view: 400, no operation of that name): no label.
    graphql(client, "query Real { me { id } }", "NotInTheDocument", **auth)
    graphql(client, "query Broken {", **auth)  # does not parse
    graphql(client, "query Health { __typename }")  # admitted already: anyone's is labelled
    found = samples(client)
    ops = {
        labels: value for (name, labels), value in found.items()
        if name == "pasar_graphql_operations_total"
    }  # fmt: skip
    query = ("type", "query")
    assert ops[(("operation", "Health"), ("outcome", "success"), query)] == 3
    assert ops[(("operation", "anonymous"), ("outcome", "success"), query)] == 1
    assert ops[(("operation", "invalid"), ("outcome", "error"), ("type", "invalid"))] == 2
    assert labels_of(found, "pasar_graphql_operations_total", "operation") == {
        "Health", "anonymous", "invalid"
    }  # fmt: skip
    seconds = (("operation", "Health"), query)
    assert found[("pasar_graphql_operation_seconds_count", seconds)] == 3


def test_graphql_operation_names_are_capped(client: TestClient, make_user) -> None:
    services: Services = client.app_state["services"]
    services.metrics.operation_names.cap = 3
    auth = make_user()
    for index in range(8):
        graphql(client, f"query Op{index} {{ me {{ id }} }}", **auth)
    names = labels_of(samples(client), "pasar_graphql_operations_total", "operation")
    assert names == {"Op0", "Op1", "Op2", "other"}


def test_strangers_and_one_account_cannot_take_the_operation_slots(
    client: TestClient, make_user
) -> None:
    """Names sent without credentials take no slot (`unauthenticated`), nor do more than
    `MAX_NEW_OPERATIONS_PER_CALLER` from one account: a legitimate client's name still gets one."""
    services: Services = client.app_state["services"]
    slots = services.metrics.operation_names
    slots.cap = 12  # an attacker's share is per_caller (10): a legitimate name still fits
    names = [f"Stranger{i}" for i in range(12)]
    before = len(slots._admitted)
    for name in names:
        graphql(client, f"query {name} {{ __typename }}")
    assert len(slots._admitted) == before
    attacker = make_user()
    for index, name in enumerate(names):
        graphql(client, f"query {name}X{index} {{ me {{ id }} }}", **attacker)
    assert len(slots._admitted) - before <= slots.per_caller
    legitimate = f"Dashboard{uuid.uuid4().hex[:8]}"
    graphql(client, f"query {legitimate} {{ me {{ id }} }}", **make_user())
    assert legitimate in labels_of(samples(client), "pasar_graphql_operations_total", "operation")


def test_log_ins_and_refreshes_by_outcome(client: TestClient) -> None:
    credentials = {"email": "metrics@example.com", "password": PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    pair = client.post("/auth/token", json=credentials).json()
    assert (
        client.post("/auth/token", json={**credentials, "password": "wrong" * 3}).status_code == 401
    )
    refreshed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    reused = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401
    found = samples(client)
    assert found[("pasar_logins_total", (("outcome", "success"),))] == 1
    assert found[("pasar_logins_total", (("outcome", "failure"),))] == 1
    refreshes = "pasar_token_refreshes_total"
    assert found[(refreshes, (("outcome", "success"), ("provider", "pasar")))] == 1
    assert found[(refreshes, (("outcome", "reused"), ("provider", "pasar")))] == 1


def test_tool_calls_and_runs_by_outcome(client: TestClient, make_user) -> None:
    headers = make_user()
    run_tools(
        client, headers, ["txt:write", "txt:read"],
        call("txt:write", path="notes/a.txt", content="tide"),
        call("txt:read", path="notes/a.txt"),
        call("txt:read", path="notes/missing.txt"),
    )  # fmt: skip
    found = samples(client)
    tools = "pasar_tool_calls_total"
    assert found[(tools, (("outcome", "success"), ("tool", "txt:write")))] == 1
    assert found[(tools, (("outcome", "success"), ("tool", "txt:read")))] == 1
    assert found[(tools, (("outcome", "error"), ("tool", "txt:read")))] == 1
    assert found[("pasar_tool_call_seconds_count", (("tool", "txt:read"),))] == 2
    assert found[("pasar_runs_finished_total", (("status", "succeeded"),))] == 1
    assert found[("pasar_executions", (("status", "succeeded"),))] == 1
    assert found[("pasar_executions", (("status", "failed"),))] == 0
    assert found[("pasar_queue_depth", (("queue", "executions"),))] == 0


def test_pool_use_and_exhaustion(pasar_settings: Settings, make_user_in) -> None:
    settings = pasar_settings.with_overrides(db_pool_size=1, db_pool_timeout_s=0.2)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        headers = make_user_in(client)
        services: Services = client.app_state["services"]
        engine = engine_of(services.sessionmaker)

        async def hold_the_only_connection() -> None:
            async with engine.connect():
                agent = {"name": "x", "config": {"model": "scripted"}}  # written through the ORM
                response = await asyncio.to_thread(
                    client.post, "/agents", json=agent, headers=headers
                )
                assert response.status_code == 503, response.text

        assert client.portal is not None
        client.portal.call(hold_the_only_connection)
        found = samples(client)
    pool = "pasar_db_pool_connections"
    assert found[(pool, (("pool", "orm"), ("state", "size")))] == 1
    assert found[(pool, (("pool", "orm"), ("state", "checked_out")))] == 0
    assert found[(pool, (("pool", "orm"), ("state", "overflow")))] == 0
    assert found[("pasar_db_pool_waits_total", (("pool", "orm"),))] >= 1
    assert found[("pasar_db_pool_timeouts_total", (("pool", "orm"),))] >= 1
    assert found[(pool, (("pool", "reads"), ("state", "size")))] == settings.db_read_pool_size


def test_queue_depth_is_the_rq_queue_when_redis_is_configured(
    pasar_settings: Settings, make_user_in
) -> None:
    with redis_server() as redis_url:
        settings = pasar_settings.with_overrides(redis_url=redis_url)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            headers = make_user_in(client)
            config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
            agent = client.post("/agents", json={"name": "q", "config": config}, headers=headers)
            agent_id = agent.json()["agent_id"]
            for _ in range(2):  # no worker runs them: they wait in the queue
                body = {"input": "x", "parameters": {"wait": False}}
                response = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers)
                assert response.status_code == 202, response.text
            found = samples(client)
    assert found[("pasar_queue_depth", (("queue", "pasar-executions"),))] == 2
    assert found[("pasar_executions", (("status", "queued"),))] == 2
