"""An operator's API key carries the operator's powers only when it was created with them
(`operator: true`, which only the operator may ask for); a key capped to a role never does."""

from __future__ import annotations

import uuid

from click.testing import CliRunner
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.cli import main
from tests.governance.admins import cli_env, make_operator


def key_headers(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, str]:
    created = client.post("/api-keys", json={"name": "k", **body}, headers=headers)
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


def test_a_key_has_operator_powers_only_when_created_with_them(
    client: TestClient, pasar_settings: Settings
) -> None:
    operator = make_operator(client, pasar_settings)
    assert client.get("/plugins/sandboxed", headers=operator).status_code == 200
    for body in ({"role": "viewer"}, {}):  # capped, or just not asked for
        plain = key_headers(client, operator, **body)
        refused = client.get("/plugins/sandboxed", headers=plain)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
        me = client.post("/graphql", json={"query": "{ me { operator } }"}, headers=plain)
        assert me.json() == {"data": {"me": {"operator": False}}}
    # A viewer key of the operator reads no audit rows (the operator's view spans them all).
    viewer = key_headers(client, operator, role="viewer")
    audit = client.get("/audit", headers=viewer)
    assert (audit.status_code, audit.json()["error"]["code"]) == (403, "INSUFFICIENT_ROLE")

    powerful = key_headers(client, operator, operator=True)
    assert client.get("/plugins/sandboxed", headers=powerful).status_code == 200
    listed = client.get("/api-keys", headers=operator).json()["api_keys"]
    assert sorted(k["operator"] for k in listed) == [False, False, False, True]
    # A key without the powers cannot mint one that has them.
    plain = key_headers(client, operator)
    minted = client.post("/api-keys", json={"operator": True}, headers=plain)
    assert (minted.status_code, minted.json()["error"]["code"]) == (403, "ROLE_ESCALATION")
    answer = client.post("/graphql", headers=plain,
                         json={"query": "mutation { createApiKey(operator: true) { id } }"})  # fmt: skip
    assert answer.json()["errors"][0]["extensions"]["code"] == "ROLE_ESCALATION"

    # The powers also need the creator to be the operator still.
    email = client.post("/graphql", json={"query": "{ me { email } }"},
                        headers=operator).json()["data"]["me"]["email"]  # fmt: skip
    unset = CliRunner().invoke(main, ["users", "set-operator", email, "--off"],
                               env=cli_env(pasar_settings))  # fmt: skip
    assert unset.exit_code == 0, unset.output
    refused = client.get("/plugins/sandboxed", headers=powerful)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")


def test_only_the_operator_asks_for_operator_powers(client: TestClient) -> None:
    credentials = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    refused = client.post("/api-keys", json={"operator": True}, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "ROLE_ESCALATION")
    for bad in ("yes", 1, None, [True]):
        answer = client.post("/api-keys", json={"operator": bad}, headers=headers)
        assert answer.status_code == 422, answer.text
