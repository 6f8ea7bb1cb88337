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
    accepted = client.post(f"/me/invitations/{invited.json()['id']}/accept", headers=invitee)
    assert accepted.status_code == 200, accepted.text
    members = client.get("/members", headers=admin).json()["members"]
    [member] = [m for m in members if m["email"] == email]
    return dict(member)
