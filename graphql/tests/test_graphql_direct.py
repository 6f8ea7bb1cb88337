"""`pasar_graphql.direct` answers exactly as Strawberry's view does: every request here is sent
with the direct path off (Strawberry's view, which also caches the document) and then on, and
the two answers must have the same status, body and headers. The counter of direct answers
shows which requests took the direct path, so the comparison cannot pass by falling back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.custom_tools import service
from pasar_core.settings import Settings
from pasar_graphql.app import PasarGraphQL
from starlette.testclient import TestClient

from pasar.app import create_app

UNCOMPARED_HEADERS = frozenset({"date", "x-request-id", "server"})
AGENT = {"name": "direct", "tools": ["txt:read"], "config": {"model": "openai:gpt-4o-mini"}}
AGENT_QUERY = "query ($id: ID!) { agent(id: $id) { id name tools config createdAt } }"


def view_of(client: TestClient) -> PasarGraphQL:
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(getattr(route, "app", None), PasarGraphQL):
            return route.app
    raise AssertionError("no /graphql route")


def answer(response: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in UNCOMPARED_HEADERS}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body, headers


def both_ways(client: TestClient, send: Callable[[], Any]) -> tuple[Any, bool]:
    """The answer through Strawberry's view, checked equal to the direct path's; and whether
    the direct path answered."""
    view = view_of(client)
    view.direct_queries = False
    try:
        through_view = answer(send())
    finally:
        view.direct_queries = True
    before = view.answered_directly
    direct = answer(send())
    assert direct == through_view
    return through_view, view.answered_directly > before


def post(client: TestClient, body: Any, headers: dict[str, str] | None = None) -> Callable[[], Any]:
    return lambda: client.post("/graphql", json=body, headers=headers or {})


@pytest.fixture
def agent_id(
    client: TestClient, make_user: Callable[..., dict[str, str]]
) -> tuple[str, dict[str, str]]:
    headers = make_user()
    created = client.post("/agents", json=AGENT, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"]), headers


def test_plain_queries_take_the_direct_path_with_the_same_answers(
    client: TestClient, agent_id: tuple[str, dict[str, str]]
) -> None:
    agent, headers = agent_id
    cases = [
        (post(client, {"query": "{ tools { id title effect } }"}), True),
        (post(client, {"query": AGENT_QUERY, "variables": {"id": agent}}, headers), True),
        (
            post(client, {"query": AGENT_QUERY, "variables": {"id": str(uuid.uuid4())}}, headers),
            True,
        ),
        # a resolver's typed error, variables that do not coerce, a missing variable
        (post(client, {"query": AGENT_QUERY, "variables": {"id": agent}}), True),
        (post(client, {"query": AGENT_QUERY, "variables": {"id": [1]}}, headers), True),
        (post(client, {"query": AGENT_QUERY}, headers), True),
        (
            post(
                client,
                {"query": AGENT_QUERY, "variables": {"id": agent}},
                {"Authorization": "Bearer not-a-token"},
            ),
            True,
        ),
        # two operations, one chosen; an unknown one (400)
        (
            post(
                client,
                {"query": "query A { me { id } } query B { tools { id } }", "operationName": "B"},
                headers,
            ),
            True,
        ),
        (
            post(
                client,
                {"query": "query A { me { id } } query B { tools { id } }", "operationName": "C"},
                headers,
            ),
            False,
        ),
        # over the cost budget: refused by the extension before execution
        (
            post(
                client,
                {
                    "query": "{ "
                    + " ".join(
                        f"a{i}: agents(first: 500) {{ id toolDetails {{ id title }} }}"
                        for i in range(10)
                    )
                    + " }"
                },
                headers,
            ),
            True,
        ),
        # left to Strawberry: invalid documents, parse errors, mutations, introspection, GET,
        # batches, other content types, bodies of the wrong shape
        (post(client, {"query": "{ tools { nope } }"}), False),
        (post(client, {"query": "{ tools { "}), False),
        (post(client, {"query": 'mutation { logOut(refreshToken: "psrt_x") }'}), False),
        (post(client, {"query": "{ __schema { queryType { name } } }"}), False),
        (post(client, {"query": "{ __schema { queryType { name } } }"}, headers), False),
        (lambda: client.get("/graphql", params={"query": "{ tools { id } }"}), False),
        (post(client, [{"query": "{ tools { id } }"}, {"query": "{ me { id } }"}], headers), False),
        (
            lambda: client.post(
                "/graphql",
                content=b'{"query": "{ tools { id } }"}',
                headers={"Content-Type": "text/plain"},
            ),
            False,
        ),
        # no streaming transport is configured: a multipart Accept is answered as plain JSON
        (post(client, {"query": "{ tools { id } }"}, {"Accept": "multipart/mixed"}), True),
        (post(client, {"query": "{ tools { id } }", "variables": [1]}), False),
        (post(client, {"query": "{ tools { id } }", "operationName": 3}), False),
        (
            lambda: client.post(
                "/graphql", content=b"{", headers={"Content-Type": "application/json"}
            ),
            False,
        ),
    ]
    for number, (send, direct) in enumerate(cases):
        _, took_direct = both_ways(client, send)
        assert took_direct is direct, number


def test_a_masked_resolver_failure_is_the_same_masked_error(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(service, "visible_registry", broken)
    (status, body, _), direct = both_ways(client, post(client, {"query": "{ tools { id } }"}))
    assert direct
    assert status == 200
    assert body["errors"][0]["message"] == "Unexpected error."
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL"}
    assert "secret detail" not in str(body)


def test_rate_limited_queries_count_and_refuse_alike(pasar_settings: Settings) -> None:
    """searchKnowledge costs a write per alias: the same sequence from two users (one through
    each path) is charged and refused the same way (the 429 and its Retry-After)."""
    limited = pasar_settings.with_overrides(rate_limit_writes="3/600")
    search = ('query ($a: ID!) { one: searchKnowledge(agentId: $a, query: "x", k: 1) { score } '
              'two: searchKnowledge(agentId: $a, query: "y", k: 1) { score } }')  # fmt: skip
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        view = view_of(client)
        answers: dict[bool, list[tuple[int, Any, dict[str, str]]]] = {}
        for direct in (False, True):
            email = f"rl-{uuid.uuid4().hex[:8]}@example.com"
            credentials = {"email": email, "password": "correct horse battery staple"}
            assert client.post("/auth/signup", json=credentials).status_code == 201
            token = client.post("/auth/token", json=credentials).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            client.post("/graphql", json={"query": search, "variables": {"a": str(uuid.uuid4())}},
                        headers=headers)  # fmt: skip  # caches the document (2 of 3 spent)
            view.direct_queries = direct
            before = view.answered_directly
            answers[direct] = [
                answer(client.post("/graphql", headers=headers, json={
                    "query": search, "variables": {"a": str(uuid.uuid4())}}))
                for _ in range(2)
            ]  # fmt: skip
            assert (view.answered_directly - before == 2) is direct
        view.direct_queries = True
    for status_body_headers in answers.values():
        for _, body, headers in status_body_headers:
            headers.pop("retry-after", None)
            for error in body.get("errors", ()):
                error.get("extensions", {}).pop("retry_after_s", None)
    assert answers[False] == answers[True]
    assert [status for status, _, _ in answers[True]] == [429, 429]


FIELDS = [
    "tools { id title effect }",
    'tools(family: "files") { id family }',
    "agent(id: $id) { id name tools }",
    "agents(first: 2) { id name }",
    "me { id email }",
    'tool(id: "txt:read") { id title }',
    "tools { id nope }",
    "nope { id }",
    "...Names",
]
FRAGMENT = " fragment Names on Query { tools { title } }"


@st.composite
def documents(draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4))
    selections = " ".join(f"a{i}: {field}" if not field.startswith("...") else field
                          for i, field in enumerate(chosen))  # fmt: skip
    header = draw(st.sampled_from(["", "query ", "query Q($id: ID!) ", "query Q($id: ID) "]))
    fragment = FRAGMENT if "...Names" in chosen else ""
    return f"{header}{{ {selections} }}{fragment}"


def test_generated_documents_and_variables_answer_alike(
    client: TestClient, agent_id: tuple[str, dict[str, str]]
) -> None:
    agent, headers = agent_id
    view = view_of(client)
    start = view.answered_directly
    ids = st.one_of(st.just(agent), st.uuids().map(str), st.integers(), st.none(),
                    st.text(max_size=5), st.lists(st.integers(), max_size=2))  # fmt: skip

    @settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(document=documents(), variables=st.one_of(st.none(), st.fixed_dictionaries({"id": ids})),
           signed_in=st.booleans())  # fmt: skip
    def check(document: str, variables: dict[str, Any] | None, signed_in: bool) -> None:
        body = {"query": document, "variables": variables}
        (status, _, _), _ = both_ways(client, post(client, body, headers if signed_in else None))
        assert status < 500

    check()
    assert view.answered_directly > start  # the direct path answered some of them
