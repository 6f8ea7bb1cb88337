"""Agents through REST: create, read, update, delete, and isolation between users."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

AGENT = {
    "name": "notes",
    "tools": ["txt:read", "txt:write"],
    "config": {
        "model": "openai:gpt-4o-mini",
        "system_prompt": "Keep notes.",
        "limits": {"max_steps": 5},
    },
}


def test_create_get_list_update_delete(client: TestClient, make_user) -> None:
    headers = make_user()
    created = client.post("/agents", json=AGENT, headers=headers)
    assert created.status_code == 201
    body = created.json()
    agent_id = body["agent_id"]
    assert body["auth_required"] is False
    assert body["auth_url"] is None
    assert body["agent"]["tools"] == ["txt:read", "txt:write"]
    assert body["agent"]["config"]["limits"] == {
        "max_steps": 5,
        "max_tool_calls": 50,
        "timeout_s": 300,
    }

    fetched = client.get(f"/agents/{agent_id}", headers=headers).json()
    assert fetched["name"] == "notes"
    assert fetched["config"]["system_prompt"] == "Keep notes."
    assert [a["id"] for a in client.get("/agents", headers=headers).json()["agents"]] == [agent_id]

    updated = client.put(
        f"/agents/{agent_id}", json={"name": "csv helper", "tools": ["csv:read"]}, headers=headers
    )
    assert updated.status_code == 200
    assert updated.json()["agent"]["name"] == "csv helper"
    assert updated.json()["agent"]["tools"] == ["csv:read"]
    assert updated.json()["agent"]["config"]["system_prompt"] == "Keep notes."  # untouched

    assert client.delete(f"/agents/{agent_id}", headers=headers).status_code == 204
    assert client.get(f"/agents/{agent_id}", headers=headers).status_code == 404
    assert client.delete(f"/agents/{agent_id}", headers=headers).status_code == 404


def test_tool_order_is_kept(client: TestClient, make_user) -> None:
    headers = make_user()
    tools = ["csv:write", "txt:read", "csv:read"]
    agent_id = client.post("/agents", json={"name": "o", "tools": tools}, headers=headers).json()[
        "agent_id"
    ]
    assert client.get(f"/agents/{agent_id}", headers=headers).json()["tools"] == tools


def test_another_users_agent_is_invisible(client: TestClient, make_user) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = client.post("/agents", json=AGENT, headers=owner).json()["agent_id"]
    missing = client.get(f"/agents/{uuid.uuid4()}", headers=stranger)
    for response in (
        client.get(f"/agents/{agent_id}", headers=stranger),
        client.put(f"/agents/{agent_id}", json={"name": "mine now"}, headers=stranger),
        client.delete(f"/agents/{agent_id}", headers=stranger),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == missing.json()["error"]["code"] == "NOT_FOUND"
    assert client.get("/agents", headers=stranger).json() == {"agents": []}
    assert client.get(f"/agents/{agent_id}", headers=owner).json()["name"] == "notes"


def test_unknown_tool_ids_are_listed_and_nothing_is_saved(client: TestClient, make_user) -> None:
    headers = make_user()
    response = client.post(
        "/agents",
        json={"name": "x", "tools": ["txt:read", "slack:send", "nope:nope"]},
        headers=headers,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "UNKNOWN_TOOLS"
    assert error["details"]["unknown"] == ["nope:nope", "slack:send"]
    assert client.get("/agents", headers=headers).json() == {"agents": []}


def test_update_with_unknown_tools_changes_nothing(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = client.post("/agents", json=AGENT, headers=headers).json()["agent_id"]
    response = client.put(
        f"/agents/{agent_id}", json={"name": "y", "tools": ["zz:top"]}, headers=headers
    )
    assert response.status_code == 422
    agent = client.get(f"/agents/{agent_id}", headers=headers).json()
    assert agent["name"] == "notes"
    assert agent["tools"] == ["txt:read", "txt:write"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "x", "config": {"model": "gpt4"}}, "/config/model"),
        ({"name": "x", "config": {"memory": "forever"}}, "/config/memory"),
        ({"name": "x", "config": {"limits": {"max_steps": 0}}}, "/config/limits/max_steps"),
        ({"name": "x", "config": {"limits": {"timeout_s": "soon"}}}, "/config/limits/timeout_s"),
        ({"name": "x", "config": {"temperature": 0.2}}, "/config/temperature"),
        ({"name": "x", "colour": "red"}, "/colour"),
        ({"name": ""}, "/name"),
        ({"name": "   "}, "/name"),
        ({"name": "x", "tools": "txt:read"}, "/tools"),
        ({"name": "x", "tools": ["txt:read", "txt:read"]}, "/tools"),
        ({"tools": []}, "/name"),
        ({"name": 7}, "/name"),
    ],
)
def test_invalid_agent_bodies_are_422_with_the_path(
    client: TestClient, make_user, body, path
) -> None:
    headers = make_user()
    response = client.post("/agents", json=body, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert path in [problem["path"] for problem in error["details"]["errors"]]
    assert client.get("/agents", headers=headers).json() == {"agents": []}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "%00", "' OR 1=1 --", "0" * 300])
def test_bad_agent_ids_are_404(client: TestClient, make_user, bad_id: str) -> None:
    response = client.get(f"/agents/{bad_id}", headers=make_user())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_list_pagination_and_bad_query_parameters(client: TestClient, make_user) -> None:
    headers = make_user()
    ids = [
        client.post("/agents", json={"name": f"a{i}"}, headers=headers).json()["agent_id"]
        for i in range(3)
    ]
    page = client.get("/agents?limit=2&offset=1", headers=headers).json()["agents"]
    assert [agent["id"] for agent in page] == ids[1:]
    for query in ("limit=abc", "limit=0", "limit=100000", "offset=-1"):
        response = client.get(f"/agents?{query}", headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BAD_REQUEST"


def test_agent_secrets_are_listed_by_name_replaced_and_deleted(
    client: TestClient, make_user
) -> None:
    owner, stranger = make_user(), make_user()
    agent_id = client.post(
        "/agents", json={"name": "db", "tools": ["postgres:query"]}, headers=owner
    ).json()["agent_id"]
    path = f"/agents/{agent_id}/secrets"
    assert client.get(path, headers=owner).json() == {"names": []}
    dsn = "postgresql://reader:s3cret@127.0.0.1:5432/shop"
    assert client.put(f"{path}/postgres_dsn", json={"value": dsn}, headers=owner).status_code == 204
    assert (
        client.put(f"{path}/postgres_dsn", json={"value": dsn + "2"}, headers=owner).status_code
        == 204
    )
    listed = client.get(path, headers=owner)
    assert listed.json() == {"names": ["postgres_dsn"]}  # one secret, replaced; never its value
    assert "s3cret" not in listed.text
    # Another user sees neither the agent nor its secrets, and cannot delete them.
    assert client.get(path, headers=stranger).status_code == 404
    assert client.delete(f"{path}/postgres_dsn", headers=stranger).status_code == 404
    assert client.delete(f"{path}/postgres_dsn", headers=owner).status_code == 204
    assert client.get(path, headers=owner).json() == {"names": []}
    gone = client.delete(f"{path}/postgres_dsn", headers=owner)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "NOT_FOUND"


def test_a_secret_no_installed_family_uses_is_refused(client: TestClient, make_user) -> None:
    headers = make_user()
    agent_id = client.post("/agents", json={"name": "x"}, headers=headers).json()["agent_id"]
    refused = client.put(
        f"/agents/{agent_id}/secrets/aws_root_key", json={"value": "AKIA..."}, headers=headers
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert "aws_root_key" in error["message"]
    assert "postgres_dsn" in error["details"]["known"]
    assert client.get(f"/agents/{agent_id}/secrets", headers=headers).json() == {"names": []}
