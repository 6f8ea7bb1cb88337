"""The GraphQL cost budget: lists weighted by `first`, aliases and fragments counted, variables
honoured; over the budget an operation does not run (QUERY_TOO_COSTLY)."""

from __future__ import annotations

from typing import Any

from graphql import parse
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_graphql.cost import DEFAULT_LIST_SIZE, MAX_COST, operation_cost
from pasar_graphql.schema import build_schema
from starlette.testclient import TestClient

SCHEMA = build_schema()._schema


def cost(query: str, **variables: Any) -> int:
    return operation_cost(SCHEMA, parse(query), None, variables)[0]


def test_lists_multiply_by_first_and_its_default() -> None:
    assert cost("{ me { id email } }") == 3
    assert cost("{ agents(first: 10) { id name } }") == 1 + 10 * 2
    assert cost("{ agents { id } }") == 1 + 50  # the argument's default (first = 50)
    tool_details = cost("{ agents(first: 2) { toolDetails { id } } }")
    assert tool_details == 1 + 2 * (1 + DEFAULT_LIST_SIZE * 1)  # a list without `first`
    assert cost("query($n: Int!) { agents(first: $n) { id } }", n=7) == 8
    aliased = cost("{ a: agents(first: 5) { id } b: agents(first: 5) { id } }")
    assert aliased == 2 * (1 + 5)
    fragment = cost("{ ...f } fragment f on Query { agents(first: 3) { id } }")
    assert fragment == 1 + 3


def send(client: TestClient, headers: dict[str, str], query: str, **variables: Any) -> Any:
    return client.post("/graphql", json={"query": query, "variables": variables},
                       headers=headers).json()  # fmt: skip


def test_an_operation_over_the_budget_does_not_run(client: TestClient, make_user) -> None:
    headers = make_user()
    heavy = "{ " + " ".join(f"a{i}: agents(first: 500) {{ id toolDetails {{ id title }} }}"
                            for i in range(10)) + " }"  # fmt: skip
    answer = send(client, headers, heavy)
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["max_cost"] == MAX_COST
    assert error["extensions"]["cost"] == cost(heavy) > MAX_COST
    # The same text with variables is judged by their values, every time.
    query = "query($n: Int!) { agents(first: $n) { id toolDetails { id } } }"
    small = send(client, headers, query, n=5)
    assert "errors" not in small, small
    big = send(client, headers, query, n=10_000)
    assert big["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "errors" not in send(client, headers, query, n=5)


def test_hostile_sizes_never_fail_the_server(client: TestClient, make_user) -> None:
    headers = make_user()

    @settings(max_examples=40, deadline=None)
    @given(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.integers(1, 5))
    def check(first: int, copies: int) -> None:
        query = (
            "{ " + " ".join(f"a{i}: agents(first: {first}) {{ id }}" for i in range(copies)) + " }"
        )
        answer = client.post("/graphql", json={"query": query}, headers=headers)
        assert answer.status_code == 200, answer.text
        for error in answer.json().get("errors", []):
            assert error["extensions"]["code"] in ("QUERY_TOO_COSTLY", "VALIDATION_FAILED")

    check()
