"""Invitations: an admin of a team invites an email with a role and learns nothing about
whether it is registered; the answer shows the invitation's secret once; the invitee accepts
with the secret from a session of that address, or declines; only acceptance makes a
membership; signing up with somebody's address neither reveals nor claims their invitations;
personal organisations take none; invitations are capped, paged, lapse; every step is audited.
Role changes end only what they must."""

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
from tests.support.teams import in_new_team, join

Headers = dict[str, str]


def sign_up(client: TestClient, email: str | None = None) -> tuple[str, Headers]:
    email = email or f"i-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    return email, log_in(client, email)


def team_admin(client: TestClient) -> tuple[str, Headers]:
    """A new user acting as the admin of a new team organisation of theirs."""
    email, personal = sign_up(client)
    return email, in_new_team(client, personal)[0]


def accept(client: TestClient, headers: Headers, invitation: dict[str, Any]) -> Any:
    return client.post(f"/me/invitations/{invitation['id']}/accept",
                       json={"secret": invitation["secret"]}, headers=headers)  # fmt: skip


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
    _, admin = team_admin(client)
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
    assert answers[0].json()["secret"] != answers[1].json()["secret"]
    _, other_admin = team_admin(client)
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
    assert all("secret" not in p for p in pending)  # shown once, in the invite's answer


def test_the_invitee_accepts_with_the_secret_and_only_then_is_a_member(
    client: TestClient,
) -> None:
    admin_email, admin = team_admin(client)
    team = org_of(admin)
    email, invitee = sign_up(client)
    invited = client.post("/invitations", json={"email": email, "role": "member"},
                          headers=admin).json()  # fmt: skip
    assert len(invited["secret"]) >= 40
    assert email not in member_emails(client, admin)
    assert client.post("/auth/switch", json={"organisation_id": team},
                       headers=invitee).status_code == 404  # fmt: skip

    # Made while the invitee's account existed: it is listed (without its secret).
    [mine] = client.get("/me/invitations", headers=invitee).json()["invitations"]
    assert (mine["id"], mine["organisation_id"], mine["role"]) == (invited["id"], team, "member")
    assert "secret" not in mine
    # Someone else cannot accept or decline it, even with the secret: reported as missing.
    _, stranger = sign_up(client)
    assert client.get("/me/invitations", headers=stranger).json() == {"invitations": []}
    refused = accept(client, stranger, invited)
    assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")
    refused = client.post(f"/me/invitations/{invited['id']}/decline", headers=stranger)
    assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")
    # The invitee without the secret, or with a wrong one, cannot accept it.
    for body in ({"secret": "x" * 43}, {"secret": invited["secret"][:-1]}, {"secret": ""}, {}):
        wrong = client.post(f"/me/invitations/{invited['id']}/accept", json=body, headers=invitee)
        assert wrong.status_code in (404, 422), body
        assert code_of(wrong) == ("NOT_FOUND" if body.get("secret") else "VALIDATION_FAILED")
    # An API key (capped to one organisation) can neither list, accept nor decline.
    key = client.post("/api-keys", json={"name": "ci"}, headers=invitee).json()["key"]
    by_key = {"X-API-Key": key}
    for answer in (
        client.get("/me/invitations", headers=by_key),
        accept(client, by_key, invited),
        client.post(f"/me/invitations/{invited['id']}/decline", headers=by_key),
    ):
        assert (answer.status_code, code_of(answer)) == (403, "ROLE_ESCALATION")
    assert gql(client, by_key, "{ myInvitations { id } }")["errors"][0]["extensions"][
        "code"] == "ROLE_ESCALATION"  # fmt: skip

    accepted = accept(client, invitee, invited)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["id"], accepted.json()["role"]) == (team, "member")
    assert email in member_emails(client, admin)
    assert client.get("/me/invitations", headers=invitee).json() == {"invitations": []}
    again = accept(client, invitee, invited)  # single use
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
    assert invited["secret"] not in str(rows)


def test_signing_up_with_an_invited_address_neither_reveals_nor_claims_the_invitation(
    client: TestClient,
) -> None:
    """Sign-up does not prove owning an address: the secret, handed over by the admin, does."""
    _, admin = team_admin(client)
    email = f"bob-{uuid.uuid4().hex[:8]}@corp.example"
    invited = client.post("/invitations", json={"email": email, "role": "admin"}, headers=admin)
    assert invited.status_code == 201
    _, attacker = sign_up(client, email.upper())
    assert client.get("/me/invitations", headers=attacker).json() == {"invitations": []}
    assert gql(client, attacker, "{ myInvitations { id } }") == {"data": {"myInvitations": []}}
    for body in ({"secret": "guess"}, {"secret": "A" * 43}):
        refused = client.post(f"/me/invitations/{invited.json()['id']}/accept", json=body,
                              headers=attacker)  # fmt: skip
        assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")
    document = "mutation($id: ID!, $s: String!) { acceptInvitation(id: $id, secret: $s) { id } }"
    refused_gql = gql(client, attacker, document, id=invited.json()["id"], s="guess")
    assert refused_gql["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert email not in member_emails(client, admin)
    # Whoever holds the secret and a session of the address joins (GraphQL here).
    joined = gql(client, attacker, document, id=invited.json()["id"], s=invited.json()["secret"])
    assert joined == {"data": {"acceptInvitation": {"id": org_of(admin)}}}


def test_an_unregistered_invitee_signs_up_later_and_declines(client: TestClient) -> None:
    _, admin = team_admin(client)
    email = f"later-{uuid.uuid4().hex[:8]}@example.com"
    invited = client.post("/invitations", json={"email": email, "role": "admin"}, headers=admin)
    assert invited.status_code == 201
    _, invitee = sign_up(client, email)
    assert gql(client, invitee, "{ myInvitations { id } }") == {"data": {"myInvitations": []}}
    declined = gql(client, invitee, "mutation($id: ID!) { declineInvitation(id: $id) }",
                   id=invited.json()["id"])  # fmt: skip
    assert declined == {"data": {"declineInvitation": True}}
    assert email not in member_emails(client, admin)
    assert client.get("/invitations", headers=admin).json() == {"invitations": []}
    rows = client.get("/audit", params={"action": "member."}, headers=admin).json()["rows"]
    assert [r["action"] for r in reversed(rows)] == ["member.invited", "member.invitation_declined"]


def test_personal_organisations_take_no_invitations_and_no_file_policy_on_a_team(
    client: TestClient,
) -> None:
    _, personal = sign_up(client)
    other, _ = sign_up(client)
    refused = client.post("/invitations", json={"email": other}, headers=personal)
    assert (refused.status_code, code_of(refused)) == (409, "PERSONAL_ORGANISATION")
    answer = gql(client, personal, "mutation($e: String!) { inviteMember(email: $e) { id } }",
                 e=other)  # fmt: skip
    assert answer["errors"][0]["extensions"]["code"] == "PERSONAL_ORGANISATION"
    assert client.get("/invitations", headers=personal).json() == {"invitations": []}
    # Files are their user's: a team's file policy would be silently ignored, so it is refused.
    team, _ = in_new_team(client, personal)
    for days in (1, 30):
        refused = client.put("/retention", json={"file_days": days}, headers=team)
        assert (refused.status_code, code_of(refused)) == (422, "VALIDATION_FAILED")
        assert "personal" in refused.json()["error"]["message"]
    assert client.get("/retention", headers=team).json()["file_days"] is None
    assert client.put("/retention", json={"file_days": None, "execution_days": 5},
                      headers=team).status_code == 200  # fmt: skip
    kept = client.put("/retention", json={"file_days": 7}, headers=personal)
    assert kept.status_code == 200, kept.text


def test_pending_invitations_are_capped_and_paged(pasar_settings: Settings) -> None:
    with TestClient(create_app(pasar_settings.with_overrides(invitation_cap=3))) as client:
        _, admin = team_admin(client)
        emails = [f"cap-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(3)]
        for email in emails:
            assert client.post("/invitations", json={"email": email},
                               headers=admin).status_code == 201  # fmt: skip
        over = client.post("/invitations", json={"email": "one-more@example.com"}, headers=admin)
        assert (over.status_code, code_of(over)) == (409, "TOO_MANY_INVITATIONS")
        again = client.post("/invitations", json={"email": emails[0], "role": "viewer"},
                            headers=admin)  # fmt: skip
        assert again.status_code == 201  # replacing a pending one is not one more
        pages = [client.get("/invitations", params={"limit": 2, "offset": o}, headers=admin)
                 .json()["invitations"] for o in (0, 2, 4)]  # fmt: skip
        assert [len(p) for p in pages] == [2, 1, 0]
        assert {i["email"] for p in pages for i in p} == set(emails)
        for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}):
            refused = client.get("/invitations", params=bad, headers=admin)
            assert (refused.status_code, code_of(refused)) == (400, "BAD_REQUEST"), bad
        answer = gql(client, admin, "{ invitations(first: 2, offset: 1) { email } }")
        assert len(answer["data"]["invitations"]) == 2
        assert gql(client, admin, "{ invitations(first: 0) { id } }")["errors"][0][
            "extensions"]["code"] == "VALIDATION_FAILED"  # fmt: skip
        # The invitee's list pages alike.
        email, invitee = sign_up(client)
        teams = [in_new_team(client, sign_up(client)[1])[0] for _ in range(3)]
        for team in teams:
            assert client.post("/invitations", json={"email": email},
                               headers=team).status_code == 201  # fmt: skip
        mine = [client.get("/me/invitations", params={"limit": 2, "offset": o},
                           headers=invitee).json()["invitations"] for o in (0, 2)]  # fmt: skip
        assert [len(p) for p in mine] == [2, 1]
        too_small = client.get("/me/invitations", params={"limit": 0}, headers=invitee)
        assert (too_small.status_code, code_of(too_small)) == (400, "BAD_REQUEST")


def test_graphql_accepts_and_admins_revoke(client: TestClient) -> None:
    _, admin = team_admin(client)
    email, invitee = sign_up(client)
    first = gql(client, admin, 'mutation($e: String!) { inviteMember(email: $e, role: "viewer") '
                               "{ id secret } }", e=email)["data"]["inviteMember"]  # fmt: skip
    assert gql(client, admin, "{ invitations { id email secret } }")["data"]["invitations"] == [
        {"id": first["id"], "email": email, "secret": None}
    ]
    revoked = gql(client, admin, "mutation($id: ID!) { revokeInvitation(id: $id) }",
                  id=first["id"])  # fmt: skip
    assert revoked == {"data": {"revokeInvitation": True}}
    document = (
        "mutation($id: ID!, $s: String!) { acceptInvitation(id: $id, secret: $s) { id role } }"
    )
    gone = gql(client, invitee, document, id=first["id"], s=first["secret"])
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    second = client.post("/invitations", json={"email": email, "role": "viewer"},
                         headers=admin).json()  # fmt: skip
    joined = gql(client, invitee, document, id=second["id"], s=second["secret"])
    assert joined == {"data": {"acceptInvitation": {"id": org_of(admin), "role": "viewer"}}}


def test_only_admins_invite(client: TestClient) -> None:
    _, admin = team_admin(client)
    email, member = sign_up(client)
    offer = client.post("/invitations", json={"email": email, "role": "member"}, headers=admin)
    assert accept(client, member, offer.json()).status_code == 200
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
        _, admin = team_admin(client)
        email, invitee = sign_up(client)
        offer = client.post("/invitations", json={"email": email}, headers=admin)
        assert offer.status_code == 201
        assert client.get("/me/invitations", headers=invitee).json() == {"invitations": []}
        lapsed = accept(client, invitee, offer.json())
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
    admin, _ = in_new_team(client, make_user())
    answer = client.post("/invitations", json=body, headers=admin)
    assert answer.status_code in (201, 409, 422), answer.text
    if answer.status_code != 201:
        assert code_of(answer) in ("VALIDATION_FAILED", "CONFLICT")
    for bad in ("not-a-uuid", "%27%20OR%201=1%20--", str(uuid.uuid4())):
        refused = client.post(f"/me/invitations/{bad}/accept", json={"secret": "s"},
                              headers=admin)  # fmt: skip
        assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")


def test_a_promotion_ends_no_session_and_a_demotion_only_the_organisations(
    client: TestClient,
) -> None:
    _, admin = team_admin(client)
    team = org_of(admin)
    email, own = sign_up(client)
    offer = client.post("/invitations", json={"email": email, "role": "viewer"}, headers=admin)
    assert accept(client, own, offer.json()).status_code == 200
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


def test_an_invitation_lapses_when_its_inviter_is_no_longer_an_admin(
    client: TestClient,
) -> None:
    """Demoted (REST) or removed (GraphQL): the invitations that admin made are refused with
    INVITATION_LAPSED, deleted, audited, and left out of both lists; the owner's still work."""
    _, owner = team_admin(client)
    team = org_of(owner)
    deputy_email, deputy_personal = sign_up(client)
    deputy_id = join(client, owner, deputy_personal, deputy_email, "admin")["user_id"]
    deputy = switch(client, deputy_personal, team)
    invitees = [sign_up(client) for _ in range(3)]
    by_deputy = [client.post("/invitations", json={"email": email, "role": "member"},
                             headers=deputy).json() for email, _ in invitees[:2]]  # fmt: skip
    by_owner = client.post("/invitations", json={"email": invitees[2][0]}, headers=owner).json()
    assert len(client.get("/invitations", headers=owner).json()["invitations"]) == 3

    demoted = client.put(f"/members/{deputy_id}", json={"role": "member"}, headers=owner)
    assert demoted.status_code == 200, demoted.text
    pending = client.get("/invitations", headers=owner).json()["invitations"]
    assert [p["id"] for p in pending] == [by_owner["id"]]
    assert client.get("/me/invitations", headers=invitees[0][1]).json() == {"invitations": []}
    # A wrong secret learns nothing (NOT_FOUND); the right one is told why.
    wrong = accept(client, invitees[0][1], {**by_deputy[0], "secret": "x" * 43})
    assert (wrong.status_code, code_of(wrong)) == (404, "NOT_FOUND")
    lapsed = accept(client, invitees[0][1], by_deputy[0])
    assert (lapsed.status_code, code_of(lapsed)) == (410, "INVITATION_LAPSED")
    again = accept(client, invitees[0][1], by_deputy[0])  # it is gone now
    assert (again.status_code, code_of(again)) == (404, "NOT_FOUND")
    assert invitees[0][0] not in member_emails(client, owner)

    # Promoted back, then removed (GraphQL): the second invitation lapses too.
    assert client.put(f"/members/{deputy_id}", json={"role": "admin"},
                      headers=owner).status_code == 200  # fmt: skip
    removed = gql(client, owner, "mutation($u: ID!) { removeMember(userId: $u) }", u=deputy_id)
    assert removed == {"data": {"removeMember": True}}, removed
    document = "mutation($id: ID!, $s: String!) { acceptInvitation(id: $id, secret: $s) { id } }"
    refused = gql(client, invitees[1][1], document, id=by_deputy[1]["id"],
                  s=by_deputy[1]["secret"])  # fmt: skip
    assert refused["errors"][0]["extensions"]["code"] == "INVITATION_LAPSED"
    assert invitees[1][0] not in member_emails(client, owner)
    # The owner's invitation is untouched by what happened to the deputy.
    assert accept(client, invitees[2][1], by_owner).status_code == 200

    rows = client.get("/audit", params={"action": "member.invitation_lapsed"},
                      headers=owner).json()["rows"]  # fmt: skip
    assert sorted(r["target_id"] for r in rows) == sorted(i["id"] for i in by_deputy)
    assert {r["details"]["reason"] for r in rows} == {"inviter_not_admin"}
    assert all(deputy_email not in str(r) and invitees[0][0] not in str(r) for r in rows)


def test_an_erased_inviters_invitations_are_deleted_with_them(
    pasar_settings: Settings,
) -> None:
    settings_ = pasar_settings.with_overrides(retention_interval_s=0.2)
    with TestClient(create_app(settings_)) as client:
        _, owner = team_admin(client)
        team = org_of(owner)
        deputy_email, deputy_personal = sign_up(client)
        join(client, owner, deputy_personal, deputy_email, "admin")
        deputy = switch(client, deputy_personal, team)
        email, invitee = sign_up(client)
        offer = client.post("/invitations", json={"email": email}, headers=deputy).json()
        erased = client.request("DELETE", "/me", json={"password": TEST_PASSWORD},
                                headers=deputy_personal)  # fmt: skip
        assert erased.status_code in (200, 204), erased.text
        assert client.get("/invitations", headers=owner).json() == {"invitations": []}

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
        gone = accept(client, invitee, offer)
        assert (gone.status_code, code_of(gone)) == (404, "NOT_FOUND")


def test_an_inviter_the_operator_deletes_takes_their_invitations_along(
    pasar_settings: Settings,
) -> None:
    """`pasar users delete` (not self-erasure): the deleted admin's invitations do not become
    the operator's, which no member's standing ends."""
    from pasar_core.accounts.service import delete_user

    with TestClient(create_app(pasar_settings)) as client:
        _, owner = team_admin(client)
        team = org_of(owner)
        deputy_email, deputy_personal = sign_up(client)
        join(client, owner, deputy_personal, deputy_email, "admin")
        deputy = switch(client, deputy_personal, team)
        email, invitee = sign_up(client)
        offer = client.post("/invitations", json={"email": email, "role": "admin"},
                            headers=deputy).json()  # fmt: skip
        services = client.app_state["services"]
        assert client.portal is not None
        client.portal.call(delete_user, services, deputy_email)
        gone = accept(client, invitee, offer)
        assert (gone.status_code, code_of(gone)) == (404, "NOT_FOUND")
        assert client.get("/me/invitations", headers=invitee).json()["invitations"] == []
