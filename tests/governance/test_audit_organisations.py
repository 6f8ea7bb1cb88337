"""Audit rows belong to the organisation they were done in: its admins read those rows and
no others, its members and viewers are refused, the operator reads every organisation's."""

from __future__ import annotations

import uuid
from typing import Any

from pasar_core.settings import Settings
from starlette.testclient import TestClient

from tests.governance.admins import make_operator
from tests.support.teams import in_new_team, join

PASSWORD = "correct horse battery staple"


def person(client: TestClient) -> tuple[str, dict[str, str], str, str]:
    """(email, headers, user id, personal organisation id) of a new user."""
    email = f"p-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).json()
    [org] = client.get("/organisations", headers=headers).json()["organisations"]
    return email, headers, str(me["data"]["me"]["id"]), org["id"]


def audit(client: TestClient, headers: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    response = client.get("/audit", params={"limit": 500, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["rows"]
    return found


def logged_in(client: TestClient, email: str) -> dict[str, str]:
    answer = client.post("/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def switched(client: TestClient, headers: dict[str, str], organisation: str) -> dict[str, str]:
    answer = client.post("/auth/switch", json={"organisation_id": organisation}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_admins_read_their_organisations_rows_and_no_others(
    client: TestClient, pasar_settings: Settings
) -> None:
    _, alice, alice_id, team_a = person(client)
    _, bob, bob_id, team_b = person(client)
    carol_email, carol, carol_id, _ = person(client)
    alice, team_a = in_new_team(client, alice)  # a personal organisation takes no invitations
    mine = client.post("/agents", json={"name": "a", "tools": []}, headers=alice).json()
    theirs = client.post("/agents", json={"name": "b", "tools": []}, headers=bob).json()
    key = client.post("/api-keys", json={"name": "ci"}, headers=alice).json()

    # Member changes are audited, in the organisation, by the admin who made them.
    join(client, alice, carol, carol_email, "viewer")
    assert client.put(f"/members/{carol_id}", json={"role": "member"},
                      headers=alice).status_code == 200  # fmt: skip
    carol_in_a = switched(client, logged_in(client, carol_email), team_a)

    rows = audit(client, alice)
    assert rows, "the admin sees their organisation's rows"
    assert {row["organisation_id"] for row in rows} == {team_a}
    text = str(rows)
    assert theirs["agent_id"] not in text
    assert bob_id not in text
    actions = [(r["action"], r["target_id"]) for r in reversed(rows)]
    assert ("agent.created", mine["agent_id"]) in actions
    assert ("api_key.created", key["id"]) in actions
    members = [(r["action"], r["actor_id"], r["target_id"], r["details"])
               for r in reversed(rows) if r["action"].startswith("member.")]  # fmt: skip
    invited, accepted, promoted = members
    assert (invited[0], invited[1], invited[3]) == ("member.invited", alice_id, {"role": "viewer"})
    assert accepted[:3] == ("member.invitation_accepted", carol_id, carol_id)
    assert accepted[3] == {"role": "viewer", "invitation_id": invited[2]}
    assert promoted == ("member.role_changed", alice_id, carol_id,
                        {"from": "viewer", "to": "member", "sessions_ended": 0})  # fmt: skip
    # Asking for another organisation's rows is answered like a missing organisation.
    other = client.get("/audit", params={"organisation_id": team_b}, headers=alice)
    assert other.status_code == 404, other.text
    assert other.json()["error"]["code"] == "NOT_FOUND"
    assert audit(client, alice, organisation_id=team_a) == rows
    usage = client.get("/audit/scope-usage", headers=alice)
    assert usage.status_code == 200
    assert usage.json() == {"scopes": []}

    # A member (and so a viewer) of the organisation is refused, on both surfaces.
    refused = client.get("/audit", headers=carol_in_a)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "INSUFFICIENT_ROLE"
    answer = client.post("/graphql", json={"query": "{ auditLog { entries { id } } }"},
                         headers=carol_in_a).json()  # fmt: skip
    assert answer["errors"][0]["extensions"]["code"] == "INSUFFICIENT_ROLE"

    # GraphQL answers the admin the same rows.
    answer = client.post("/graphql", json={"query": "{ auditLog(first: 500) { entries "
                                                    "{ organisationId targetId } } }"},
                         headers=alice).json()  # fmt: skip
    assert "errors" not in answer, answer
    entries = answer["data"]["auditLog"]["entries"]
    assert {e["organisationId"] for e in entries} == {team_a}
    assert len(entries) == len(rows)

    # Removing carol is audited too.
    assert client.delete(f"/members/{carol_id}", headers=alice).status_code == 204
    [removed] = audit(client, alice, action="member.removed")
    assert (removed["target_id"], removed["organisation_id"]) == (carol_id, team_a)

    # The operator reads every organisation's rows, and may narrow to one.
    operator = make_operator(client, pasar_settings)
    everything = audit(client, operator, action="agent.created")
    assert {r["target_id"] for r in everything} >= {mine["agent_id"], theirs["agent_id"]}
    only_b = audit(client, operator, organisation_id=team_b)
    assert only_b
    assert {r["organisation_id"] for r in only_b} == {team_b}
    assert mine["agent_id"] not in str(only_b)
