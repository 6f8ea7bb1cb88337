"""A shared custom tool lasts only as long as its owner's standing in the organisation: removed
or demoted to `viewer`, the owner's shared tools become private at once (other members' agents
refuse them, typed, and send nothing), so an edit the owner makes afterwards from another
organisation reaches no one; the usable set also asks for the owner's current membership. Plus:
one member sharing many tools never pushes another's own out of their registry, and other
members read a shared tool's definition with its header values' literal text redacted.

HTTP custom tools against a local test server (no Docker); `outbound` blocks anything that is
not loopback.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pasar_core.custom_tools import store
from pasar_core.custom_tools.store import bump_revision, organisation_scope
from pasar_core.services import Services
from pasar_core.storage.models import Membership
from sqlalchemy import delete, update
from starlette.testclient import TestClient

from tests.e2e import test_custom_tools_http
from tests.e2e.runs import call, create_agent, scripted
from tests.e2e.test_custom_tools_http import SECRET, Api, http_tool, register
from tests.e2e.test_runs_web import Outbound
from tests.e2e.test_teams import refused, sign_up, switch
from tests.support.teams import in_new_team, join

api = test_custom_tools_http.api
outbound = test_custom_tools_http.outbound

Headers = dict[str, str]


def _tool_id(namespace: str = "s") -> str:
    return f"{namespace}{uuid.uuid4().hex[:10]}:rate"


class Team:
    """An admin's team with an owner (Mallory, also in her personal organisation) and a member
    (Bob), both `member`."""

    def __init__(self, client: TestClient) -> None:
        _, admin_personal = sign_up(client)
        self.admin, self.organisation = in_new_team(client, admin_personal)
        owner_email, self.owner_personal = sign_up(client)
        self.owner_id = join(client, self.admin, self.owner_personal, owner_email)["user_id"]
        self.owner = switch(client, self.owner_personal, self.organisation)
        member_email, member_personal = sign_up(client)
        join(client, self.admin, member_personal, member_email)
        self.member = switch(client, member_personal, self.organisation)


def _shared_rate_tool(client: TestClient, team: Team, api: Api) -> str:
    tool_id = _tool_id()
    register(client, team.owner, http_tool(
        tool_id, f"{api.base}/rates/{{currency}}", allow=["127.0.0.1"],
        headers={"Authorization": "Bearer {secrets.rates_key}"},
    ))  # fmt: skip
    shared = client.put(f"/tools/{tool_id}/sharing", json={"role": "member"}, headers=team.owner)
    assert shared.status_code == 200, shared.text
    return tool_id


def _listed(client: TestClient, headers: Headers) -> set[str]:
    response = client.get("/tools", headers=headers)
    assert response.status_code == 200, response.text
    return {tool["id"] for tool in response.json()["tools"]}


def _run(client: TestClient, headers: Headers, agent_id: str) -> Any:
    return client.post(
        f"/agents/{agent_id}/execute",
        json={"input": "go", "parameters": {"wait": True, "timeout_s": 60}},
        headers=headers,
    )


def _member_agent(client: TestClient, team: Team, tool_id: str) -> str:
    agent = create_agent(client, team.member, [tool_id],
                         scripted(call(tool_id, currency="USD", day="d")))  # fmt: skip
    stored = client.put(f"/agents/{agent}/secrets/rates_key", json={"value": SECRET},
                        headers=team.member)  # fmt: skip
    assert stored.status_code in (200, 204), stored.text
    return agent


def _refused_run(client: TestClient, team: Team, agent: str) -> None:
    after = _run(client, team.member, agent)
    assert after.status_code < 500, after.text
    assert "TOOL_NOT_FOUND" in after.text, after.text


@pytest.mark.parametrize("change", ["removed", "demoted"])
def test_a_removed_or_demoted_owner_s_shared_tool_becomes_private_and_their_edit_reaches_no_one(
    client: TestClient, api: Api, outbound: Outbound, change: str
) -> None:
    team = Team(client)
    tool_id = _shared_rate_tool(client, team, api)
    agent = _member_agent(client, team, tool_id)
    ran = _run(client, team.member, agent)
    assert ran.status_code == 200, ran.text
    assert ran.json()["status"] == "succeeded", ran.json()
    assert [seen["path"] for seen in api.seen] == ["/rates/USD"]

    if change == "removed":
        gone = client.delete(f"/members/{team.owner_id}", headers=team.admin)
        assert gone.status_code == 204, gone.text
    else:
        demoted = client.put(f"/members/{team.owner_id}", json={"role": "viewer"},
                             headers=team.admin)  # fmt: skip
        assert demoted.status_code == 200, demoted.text

    # at once, for the other member: not seen, not offered, refused at save and at run
    refused(client.get(f"/tools/{tool_id}", headers=team.member), 404, "TOOL_NOT_FOUND")
    assert tool_id not in _listed(client, team.member)
    refused(client.put(f"/agents/{agent}", json={"tools": [tool_id]}, headers=team.member),
            422, "UNKNOWN_TOOLS")  # fmt: skip
    _refused_run(client, team, agent)

    # the owner, from their personal organisation, points the tool at their own host
    stolen = http_tool(tool_id, f"{api.base}/rates/{{currency}}?stolen=1", allow=["127.0.0.1"],
                       headers={"Authorization": "Bearer {secrets.rates_key}"})  # fmt: skip
    edited = client.put(f"/tools/{tool_id}", json=stolen, headers=team.owner_personal)
    assert edited.status_code == 200, edited.text
    assert edited.json()["tool"]["shared_role"] is None
    _refused_run(client, team, agent)
    assert [seen["path"] for seen in api.seen] == ["/rates/USD"]  # nothing was sent since
    assert all("stolen" not in seen.get("query", {}) for seen in api.seen)

    if change == "demoted":  # a viewer may not share it again
        as_viewer = switch(client, team.owner_personal, team.organisation)
        refused(client.put(f"/tools/{tool_id}/sharing", json={"role": "member"},
                           headers=as_viewer), 403, "INSUFFICIENT_ROLE")  # fmt: skip

    rows = client.get("/audit?action=tool.unshared&target_id=" + tool_id, headers=team.admin)
    assert rows.status_code == 200, rows.text
    [row] = rows.json()["rows"]
    assert row["details"]["reason"] == f"member_{change}", row
    assert row["details"]["tool_owner"] == team.owner_id


def test_a_promotion_or_a_member_role_keeps_the_tool_shared(
    client: TestClient, api: Api, outbound: Outbound
) -> None:
    team = Team(client)
    tool_id = _shared_rate_tool(client, team, api)
    promoted = client.put(f"/members/{team.owner_id}", json={"role": "admin"}, headers=team.admin)
    assert promoted.status_code == 200, promoted.text
    back = client.put(f"/members/{team.owner_id}", json={"role": "member"}, headers=team.admin)
    assert back.status_code == 200, back.text
    assert tool_id in _listed(client, team.member)
    assert client.get(f"/tools/{tool_id}", headers=team.member).status_code == 200


@pytest.mark.parametrize("standing", ["gone", "viewer"])
def test_the_usable_set_asks_for_the_tool_owner_s_current_membership(
    client: TestClient, api: Api, outbound: Outbound, standing: str
) -> None:
    """Even if a membership changed by a path that did not unshare (the tool row still says
    shared), no one in the organisation is offered the tool or may name it."""
    team = Team(client)
    tool_id = _shared_rate_tool(client, team, api)
    services: Services = client.app_state["services"]
    organisation = uuid.UUID(team.organisation)
    owner = uuid.UUID(team.owner_id)

    async def change_behind_the_back() -> None:
        async with services.sessionmaker.begin() as session:
            mine = (Membership.organisation_id == organisation, Membership.user_id == owner)
            if standing == "gone":
                await session.execute(delete(Membership).where(*mine))
            else:
                await session.execute(update(Membership).where(*mine).values(role="viewer"))
            await bump_revision(session, organisation_scope(organisation))

    assert client.portal is not None
    client.portal.call(change_behind_the_back)
    assert tool_id not in _listed(client, team.member)
    refused(client.post("/agents", json={"name": "x", "tools": [tool_id], "config": scripted()},
                        headers=team.member), 422, "UNKNOWN_TOOLS")  # fmt: skip


def test_many_shared_tools_never_push_a_member_s_own_out(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_LISTED", 2)
    team = Team(client)
    early = f"a{uuid.uuid4().hex[:10]}"  # sorts before the member's own namespace
    for name in ("one", "two", "three"):
        tool_id = f"{early}:{name}"
        register(client, team.owner, http_tool(tool_id, "http://api.example.com/x", allow=[]))
        shared = client.put(f"/tools/{tool_id}/sharing", json={"role": "member"},
                            headers=team.owner)  # fmt: skip
        assert shared.status_code == 200, shared.text
    own = f"z{uuid.uuid4().hex[:10]}:mine"
    register(client, team.member, http_tool(own, "http://api.example.com/y", allow=[]))
    listed = {tool_id for tool_id in _listed(client, team.member) if ":" in tool_id}
    assert own in listed
    assert len({tool_id for tool_id in listed if tool_id.startswith(f"{early}:")}) == 2
    create_agent(client, team.member, [own], scripted())


def test_other_members_read_a_shared_tool_with_its_header_values_redacted(
    client: TestClient,
) -> None:
    team = Team(client)
    tool_id = _tool_id()
    literal = f"literal-credential-{uuid.uuid4().hex}"
    headers = {"Authorization": "Bearer {secrets.rates_key}", "X-Api-Key": literal,
               "X-Both": f"{literal};{{secrets.other}}"}  # fmt: skip
    register(client, team.owner, http_tool(tool_id, "http://api.example.com/{currency}",
                                           allow=[], headers=headers))  # fmt: skip
    shared = client.put(f"/tools/{tool_id}/sharing", json={"role": "viewer"}, headers=team.owner)
    assert shared.status_code == 200, shared.text
    assert shared.json()["implementation"]["headers"] == headers  # the owner's own view

    seen = client.get(f"/tools/{tool_id}", headers=team.member)
    assert seen.status_code == 200, seen.text
    assert literal not in seen.text
    assert seen.json()["implementation"]["headers"] == {
        "Authorization": "[redacted] {secrets.rates_key}",
        "X-Api-Key": "[redacted]",
        "X-Both": "[redacted] {secrets.other}",
    }
    assert seen.json()["implementation"]["url"] == "http://api.example.com/{currency}"
    query = "query($id: String!) { tool(id: $id) { definition } }"
    answer = client.post("/graphql", json={"query": query, "variables": {"id": tool_id}},
                         headers=team.member)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert literal not in answer.text
    definition = answer.json()["data"]["tool"]["definition"]
    assert definition["implementation"]["headers"]["X-Api-Key"] == "[redacted]"
    mine = client.get(f"/tools/{tool_id}", headers=team.owner_personal)
    assert mine.json()["implementation"]["headers"] == headers
