"""createApiKey (and the other mutations whose answer is shown once) beside another root field:
refused at validation before anything runs, so no key is created whose secret a failing
neighbour would null out of the answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

MIXED = [
    'mutation { createApiKey { key } revokeApiKey(id: "00000000-0000-0000-0000-000000000000") { id } }',
    "mutation { a: createApiKey { key } b: createApiKey { key } }",
    'mutation { ...M } fragment M on Mutation { createApiKey { key } logOut(refreshToken: "psrt_x") }',
    'mutation { logOut(refreshToken: "psrt_x") ... on Mutation { createApiKey { key } } }',
    'mutation { refreshToken(refreshToken: "psrt_x") { accessToken } createApiKey { id } }',
    'mutation { changePassword(currentPassword: "a-password", newPassword: "another-one") '
    "{ sessionsRevoked } createApiKey { id } }",
    'mutation { inviteMember(email: "x@example.com") { secret } createApiKey { id } }',
]


def keys(client: TestClient, headers: dict[str, str]) -> list[object]:
    body = client.post("/graphql", json={"query": "{ apiKeys { id } }"}, headers=headers).json()
    return list(body["data"]["apiKeys"])


@pytest.mark.parametrize("document", MIXED)
def test_a_secret_mutation_beside_another_field_is_refused_before_it_runs(
    client: TestClient, make_user: Callable[..., dict[str, str]], document: str
) -> None:
    headers = make_user()
    response = client.post("/graphql", json={"query": document}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SECRET_MUTATION_NOT_ALONE"
    assert error["extensions"]["field"] in {
        "createApiKey",
        "a",
        "refreshToken",
        "changePassword",
        "inviteMember",
    }
    assert error["extensions"]["others"]
    assert keys(client, headers) == []  # nothing ran: no key without its secret


def test_the_secret_is_answered_when_it_is_alone(
    client: TestClient, make_user: Callable[..., dict[str, str]]
) -> None:
    headers = make_user()
    for document in ("mutation { createApiKey { key } }",
                     "mutation { __typename createApiKey { id key } }"):  # fmt: skip
        body = client.post("/graphql", json={"query": document}, headers=headers).json()
        assert "errors" not in body, body
        assert body["data"]["createApiKey"]["key"]
    assert len(keys(client, headers)) == 2
