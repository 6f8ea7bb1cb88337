"""Joining an organisation as a user does: an admin invites the email, the invitee accepts."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

Headers = dict[str, str]


def join(
    client: TestClient, admin: Headers, invitee: Headers, email: str, role: str = "member"
) -> dict[str, Any]:
    """`invitee` (any session of theirs) joins the admin's organisation with `role`; returns
    their member entry (`user_id`, `email`, `role`, `joined_at`)."""
    invited = client.post("/invitations", json={"email": email, "role": role}, headers=admin)
    assert invited.status_code == 201, invited.text
    accepted = client.post(f"/me/invitations/{invited.json()['id']}/accept",
                           json={"secret": invited.json()["secret"]}, headers=invitee)  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    members = client.get("/members", headers=admin).json()["members"]
    [member] = [m for m in members if m["email"] == email]
    return dict(member)


def in_new_team(client: TestClient, admin: Headers, name: str = "team") -> tuple[Headers, str]:
    """`admin` creates a team organisation (a personal one takes no invitations): headers
    acting in it, and its id."""
    created = client.post("/organisations", json={"name": name}, headers=admin)
    assert created.status_code == 201, created.text
    switched = client.post("/auth/switch", json={"organisation_id": created.json()["id"]},
                           headers=admin)  # fmt: skip
    assert switched.status_code == 200, switched.text
    return {"Authorization": f"Bearer {switched.json()['access_token']}"}, created.json()["id"]
