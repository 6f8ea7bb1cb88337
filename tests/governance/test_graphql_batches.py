"""Batched GraphQL requests (a JSON list, at most 10 operations): hostile batches are typed
errors, never a 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

VALUES = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.just("{ __typename }")
)
OPERATIONS = st.dictionaries(
    st.sampled_from(["query", "variables", "operationName", "extensions", "zzz"]),
    VALUES | st.dictionaries(st.text(max_size=5), VALUES, max_size=3),
    max_size=4,
)
BATCHES = st.lists(OPERATIONS | VALUES, max_size=12)


def test_a_batch_answers_each_operation(client: TestClient, make_user) -> None:
    headers = make_user()
    batch = [{"query": "{ me { email } }"}, {"query": "{ __typename }"}]
    answer = client.post("/graphql", json=batch, headers=headers)
    assert answer.status_code == 200
    assert [item["data"] for item in answer.json()][1] == {"__typename": "Query"}
    too_many = client.post("/graphql", json=[{"query": "{ __typename }"}] * 11, headers=headers)
    assert too_many.status_code == 400
    assert client.post("/graphql", json=[], headers=headers).status_code == 400


def test_hostile_batches_are_typed(client: TestClient, make_user) -> None:
    headers = make_user()

    @settings(max_examples=80, deadline=None)
    @given(BATCHES)
    @example([{"query": True}])  # once an INTERNAL error: a batch's fields were not checked
    @example([{"query": "{ __typename }", "variables": [1]}])
    def check(batch: list[Any]) -> None:
        answer = client.post("/graphql", content=json.dumps(batch),
                             headers={**headers, "Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code in (200, 400, 422), answer.text
        body = answer.json()
        items = body if isinstance(body, list) else [body]
        for item in items:
            for error in item.get("errors") or []:
                assert error["extensions"]["code"] != "INTERNAL", error

    check()
