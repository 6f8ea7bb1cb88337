"""Invitations: an admin invites an email with a role and learns nothing about whether it is
registered; the invitee sees, accepts or declines it; only acceptance makes a membership;
invitations lapse; every step is audited. Role changes end only what they must."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app

Headers = dict[str, str]


def sign_up(client: TestClient, email: str | None = None) -> tuple[str, Headers]:
    email = email or f"i-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    return email, log_in(client, email)


def log_in(client: TestClient, email: str) -> Headers:
    answer = client.post("/auth/token", json={"email": email, "password": TEST_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def org_of(headers: Headers) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["org"])


def switch(client: TestClient, headers: Headers, organisation: str) -> Headers:
    answer = client.post("/auth/switch", json={"organisation_id": organisation}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


def member_emails(client: TestClient, admin: Headers) -> set[str]:
    return {m["email"] for m in client.get("/members", headers=admin).json()["members"]}


def gql(client: TestClient, headers: Headers, query: str, **variables: Any) -> dict[str, Any]:
    answer = client.post("/graphql", json={"query": query, "variables": variables},
                         headers=headers)  # fmt: skip
    payload: dict[str, Any] = answer.json()
    return payload


def test_the_answer_is_the_same_whether_or_not_the_email_is_registered(
    client: TestClient,
) -> None:
    _, admin = sign_up(client)
    registered, _ = sign_up(client)
    unregistered = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = [
        client.post("/invitations", json={"email": email, "role": "viewer"}, headers=admin)
        for email in (registered, unregistered)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    shapes = [{k: (v if k == "role" else type(v).__name__) for k, v in a.json().items()}
              for a in answers]  # fmt: skip
    assert shapes[0] == shapes[1]
    assert [a.json()["email"] for a in answers] == [registered, unregistered]
    # GraphQL answers alike (another admin, the same two addresses).
    _, other_admin = sign_up(client)
    document = "mutation($e: String!) { inviteMember(email: $e) { email role expiresAt } }"
    found = [gql(client, other_admin, document, e=email)["data"]["inviteMember"]
             for email in (registered, unregistered)]  # fmt: skip
    assert [sorted(f) for f in found] == [["email", "expiresAt", "role"]] * 2
    assert [(f["email"], f["role"]) for f in found] == [
        (registered, "member"), (unregistered, "member")
    ]  # fmt: skip
    # Nobody became a member by being invited.
    assert registered not in member_emails(client, admin)
    pending = client.get("/invitations", headers=admin).json()["invitations"]
    assert {p["email"] for p in pending} >= {registered, unregistered}


def test_the_invitee_accepts_and_only_then_is_a_member(client: TestClient) -> None:
    admin_email, admin = sign_up(client)
    team = org_of(admin)
    email, invitee = sign_up(client)
    invited = client.post("/invitations", json={"email": email, "role": "member"},
                          headers=admin).json()  # fmt: skip
    assert email not in member_emails(client, admin)
    assert client.post("/auth/switch", json={"organisation_id": team},
                       headers=invitee).status_code == 404  # fmt: skip

    [mine] = client.get("/me/invitations", headers=invitee).json()["invitations"]
    assert (mine["id"], mine["organisation_id"], mine["role"]) == (invited["id"], team, "member")
    # Someone else cannot accept or decline it: it is reported like a missing one.
    _, stranger = sign_up(client)
    assert client.get("/me/invitations", headers=stranger).json() == {"invitations": []}
    for action in ("accept", "decline"):
        refused = client.post(f"/me/invitations/{invited['id']}/{action}", headers=stranger)
        assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")
    # An API key (capped to one organisation) cannot accept it.
    key = client.post("/api-keys", json={"name": "ci"}, headers=invitee).json()["key"]
    by_key = client.post(f"/me/invitations/{invited['id']}/accept", headers={"X-API-Key": key})
    assert (by_key.status_code, code_of(by_key)) == (403, "ROLE_ESCALATION")

    accepted = client.post(f"/me/invitations/{invited['id']}/accept", headers=invitee)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["id"], accepted.json()["role"]) == (team, "member")
    assert email in member_emails(client, admin)
    assert client.get("/me/invitations", headers=invitee).json() == {"invitations": []}
    again = client.post(f"/me/invitations/{invited['id']}/accept", headers=invitee)
    assert (again.status_code, code_of(again)) == (404, "NOT_FOUND")
    in_team = switch(client, invitee, team)
    assert client.get("/agents", headers=in_team).status_code == 200
    # Inviting a member again is a conflict (admins see members anyway).
    twice = client.post("/invitations", json={"email": email}, headers=admin)
    assert (twice.status_code, code_of(twice)) == (409, "CONFLICT")

    rows = client.get("/audit", params={"action": "member."}, headers=admin).json()["rows"]
    actions = [(r["action"], r["target_type"]) for r in reversed(rows)]
    assert actions == [("member.invited", "invitation"), ("member.invitation_accepted", "user")]
    assert email not in str(rows)  # ids, never addresses
    assert admin_email not in str(rows)


def test_an_unregistered_invitee_signs_up_later_and_declines(client: TestClient) -> None:
    _, admin = sign_up(client)
    email = f"later-{uuid.uuid4().hex[:8]}@example.com"
    invited = client.post("/invitations", json={"email": email, "role": "admin"}, headers=admin)
    assert invited.status_code == 201
    _, invitee = sign_up(client, email)
    answer = gql(client, invitee, "{ myInvitations { id role organisationId } }")
    assert answer["data"]["myInvitations"] == [
        {"id": invited.json()["id"], "role": "admin", "organisationId": org_of(admin)}
    ]
    declined = gql(client, invitee, "mutation($id: ID!) { declineInvitation(id: $id) }",
                   id=invited.json()["id"])  # fmt: skip
    assert declined == {"data": {"declineInvitation": True}}
    assert gql(client, invitee, "{ myInvitations { id } }") == {"data": {"myInvitations": []}}
    assert email not in member_emails(client, admin)
    assert client.get("/invitations", headers=admin).json() == {"invitations": []}
    rows = client.get("/audit", params={"action": "member."}, headers=admin).json()["rows"]
    assert [r["action"] for r in reversed(rows)] == ["member.invited", "member.invitation_declined"]


def test_graphql_accepts_and_admins_revoke(client: TestClient) -> None:
    _, admin = sign_up(client)
    email, invitee = sign_up(client)
    first = gql(client, admin, 'mutation($e: String!) { inviteMember(email: $e, role: "viewer") '
                               "{ id } }", e=email)["data"]["inviteMember"]["id"]  # fmt: skip
    assert gql(client, admin, "{ invitations { id email } }")["data"]["invitations"] == [
        {"id": first, "email": email}
    ]
    revoked = gql(client, admin, "mutation($id: ID!) { revokeInvitation(id: $id) }", id=first)
    assert revoked == {"data": {"revokeInvitation": True}}
    gone = gql(client, invitee, "mutation($id: ID!) { acceptInvitation(id: $id) { id } }",
               id=first)  # fmt: skip
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    second = client.post("/invitations", json={"email": email, "role": "viewer"},
                         headers=admin).json()["id"]  # fmt: skip
    joined = gql(client, invitee, "mutation($id: ID!) { acceptInvitation(id: $id) { id role } }",
                 id=second)  # fmt: skip
    assert joined == {"data": {"acceptInvitation": {"id": org_of(admin), "role": "viewer"}}}


def test_only_admins_invite(client: TestClient) -> None:
    _, admin = sign_up(client)
    email, member = sign_up(client)
    offer = client.post("/invitations", json={"email": email, "role": "member"}, headers=admin)
    client.post(f"/me/invitations/{offer.json()['id']}/accept", headers=member)
    in_team = switch(client, member, org_of(admin))
    for method, path, body in (("POST", "/invitations", {"email": "x@example.com"}),
                               ("GET", "/invitations", None),
                               ("DELETE", f"/invitations/{uuid.uuid4()}", None)):  # fmt: skip
        refused = client.request(method, path, json=body, headers=in_team)
        assert (refused.status_code, code_of(refused)) == (403, "INSUFFICIENT_ROLE"), path
    answer = gql(client, in_team, 'mutation { inviteMember(email: "x@example.com") { id } }')
    assert answer["errors"][0]["extensions"]["code"] == "INSUFFICIENT_ROLE"


def test_invitations_lapse(pasar_settings: Settings) -> None:
    settings_ = pasar_settings.with_overrides(invitation_ttl_s=-1, retention_interval_s=0.2)
    with TestClient(create_app(settings_), raise_server_exceptions=False) as client:
        _, admin = sign_up(client)
        email, invitee = sign_up(client)
        offer = client.post("/invitations", json={"email": email}, headers=admin)
        assert offer.status_code == 201
        assert client.get("/me/invitations", headers=invitee).json() == {"invitations": []}
        lapsed = client.post(f"/me/invitations/{offer.json()['id']}/accept", headers=invitee)
        assert (lapsed.status_code, code_of(lapsed)) == (404, "NOT_FOUND")
        assert email not in member_emails(client, admin)

        async def stored() -> int:
            from sqlalchemy import text

            async with client.app_state["services"].sessionmaker() as session:
                return int(await session.scalar(text("SELECT count(*) FROM invitations")) or 0)

        assert client.portal is not None
        for _ in range(300):  # the maintenance job deletes it; the bound only ends a broken test
            if client.portal.call(stored) == 0:
                break
            time.sleep(0.1)
        assert client.portal.call(stored) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(
    st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=400), st.integers(), st.none())),
    st.fixed_dictionaries({"email": st.text(max_size=400), "role": st.text(max_size=10)}),
))  # fmt: skip
def test_hostile_invitation_bodies_are_typed_4xx(
    client: TestClient, make_user: Any, body: dict[str, Any]
) -> None:
    admin = make_user()
    answer = client.post("/invitations", json=body, headers=admin)
    assert answer.status_code in (201, 409, 422), answer.text
    if answer.status_code != 201:
        assert code_of(answer) in ("VALIDATION_FAILED", "CONFLICT")
    for bad in ("not-a-uuid", "%27%20OR%201=1%20--", str(uuid.uuid4())):
        refused = client.post(f"/me/invitations/{bad}/accept", headers=admin)
        assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")


def test_a_promotion_ends_no_session_and_a_demotion_only_the_organisations(
    client: TestClient,
) -> None:
    _, admin = sign_up(client)
    team = org_of(admin)
    email, own = sign_up(client)
    offer = client.post("/invitations", json={"email": email, "role": "viewer"}, headers=admin)
    client.post(f"/me/invitations/{offer.json()['id']}/accept", headers=own)
    user_id = next(m["user_id"] for m in client.get("/members", headers=admin).json()["members"]
                   if m["email"] == email)  # fmt: skip
    in_team = switch(client, own, team)
    promoted = client.put(f"/members/{user_id}", json={"role": "member"}, headers=admin)
    assert promoted.status_code == 200
    assert client.get("/agents", headers=in_team).status_code == 200  # still signed in
    assert client.get("/agents", headers=own).status_code == 200
    demoted = client.put(f"/members/{user_id}", json={"role": "viewer"}, headers=admin)
    assert demoted.status_code == 200
    refused = client.get("/agents", headers=in_team)
    assert (refused.status_code, code_of(refused)) == (401, "UNAUTHENTICATED")
    # The member's session in their own organisation is not the admin's to end.
    assert client.get("/agents", headers=own).status_code == 200
    fresh = switch(client, own, team)
    me = gql(client, fresh, "{ me { role } }")
    assert me == {"data": {"me": {"role": "viewer"}}}
    rows = client.get("/audit", params={"action": "member.role_changed"}, headers=admin).json()
    assert [r["details"]["sessions_ended"] > 0 for r in rows["rows"]] == [True, False]
