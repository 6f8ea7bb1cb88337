"""What a schedule may do is bounded by who made it: a schedule made with an API key fires with
that key's standing and stops when the key does; fired runs pay their owner's runs budget; each
member's schedules on a shared agent, and each owner's in all, are capped apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from pasar_core.accounts.principal import Principal
from pasar_core.schedules.firer import KEY_REVOKED, ScheduleFirer, owner_principal
from pasar_core.settings import Settings
from pasar_core.storage.models import Schedule
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.schedules.support import (
    fired_runs,
    make_agent,
    make_schedule,
    schedule_row,
    services_of,
    sign_up,
)
from tests.support.teams import in_new_team, join

Headers = dict[str, str]


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    """The server's own firer looks once an hour; the tests fire on their own clock. Two runs
    per hour per user, two schedules per agent and three per owner."""
    settings = pasar_settings.with_overrides(
        schedule_poll_s=3600, rate_limit_runs="2/3600", schedule_cap=2, schedule_owner_cap=3
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def api_key(client: TestClient, headers: Headers, **body: object) -> tuple[str, Headers]:
    created = client.post("/api-keys", json={"name": "cron", **body}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"]), {"X-API-Key": created.json()["key"]}


def fire_at(client: TestClient, moment: datetime) -> int:
    """Fire one pass as of `moment`; how many runs it made."""
    base: ScheduleFirer | None = client.app_state["runs"].schedules
    assert base is not None
    assert client.portal is not None
    firer = base.with_clock(lambda: moment)
    outcomes = client.portal.call(firer.fire_due)
    return sum(outcome.queued is not None for outcome in outcomes)


def test_a_key_s_schedule_acts_with_the_key_s_role_and_pauses_once_the_key_is_revoked(
    client: TestClient,
) -> None:
    admin = sign_up(client)
    in_team, _ = in_new_team(client, admin)
    key_id, by_key = api_key(client, in_team, role="member")
    agent_id = make_agent(client, in_team)
    schedule = make_schedule(client, by_key, agent_id, "0 * * * *")
    services = services_of(client)
    assert client.portal is not None
    row = client.portal.call(schedule_row, services, schedule["id"])
    assert str(row.api_key_id) == key_id

    async def standing(row: Schedule) -> Principal | str:
        async with services.sessionmaker() as session:
            return await owner_principal(session, row)

    principal = client.portal.call(standing, row)
    assert not isinstance(principal, str)
    assert (principal.role, principal.via, str(principal.api_key_id)) == (
        "member",
        "api_key",
        key_id,
    )

    first = datetime.fromisoformat(schedule["next_run_at"])
    assert fire_at(client, first) == 1
    assert client.delete(f"/api-keys/{key_id}", headers=in_team).status_code == 204
    later = client.portal.call(schedule_row, services, schedule["id"])
    assert later.next_run_at is not None
    assert fire_at(client, later.next_run_at) == 0
    paused = client.portal.call(schedule_row, services, schedule["id"])
    assert paused.paused_at is not None
    assert paused.paused_reason == KEY_REVOKED
    assert [tick for tick, _, _ in client.portal.call(fired_runs, services, schedule["id"])] == [
        first
    ]
    # a session's schedule on the same agent is not the key's: it acts as the admin
    by_session = make_schedule(client, in_team, agent_id, "30 * * * *")
    own = client.portal.call(standing, client.portal.call(schedule_row, services, by_session["id"]))
    assert not isinstance(own, str)
    assert (own.role, own.via, own.api_key_id) == ("admin", "token", None)


def test_fired_runs_pay_the_owner_s_runs_budget_and_a_tick_over_it_is_skipped(
    client: TestClient,
) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    assert client.post(f"/agents/{agent_id}/execute", json={"input": "hi"},
                       headers=headers).status_code in (200, 202)  # fmt: skip
    schedule = make_schedule(client, headers, agent_id, "0 * * * *")
    services = services_of(client)
    assert client.portal is not None
    first = datetime.fromisoformat(schedule["next_run_at"])
    assert fire_at(client, first) == 1  # the second run of the hour's budget of two
    second = client.portal.call(schedule_row, services, schedule["id"]).next_run_at
    assert second is not None
    assert fire_at(client, second) == 0  # over the budget: skipped
    row = client.portal.call(schedule_row, services, schedule["id"])
    assert row.paused_at is None, "a rate-limited tick skips; the schedule stays active"
    assert row.next_run_at is not None
    assert row.next_run_at > second
    assert [tick for tick, _, _ in client.portal.call(fired_runs, services, schedule["id"])] == [
        first
    ]
    refused = client.post(f"/agents/{agent_id}/execute", json={"input": "hi"}, headers=headers)
    assert refused.status_code == 429, "the fired run was charged to the same budget"


def test_members_are_capped_apart_on_a_shared_agent_and_owners_in_all(client: TestClient) -> None:
    admin = sign_up(client)
    in_team, team_id = in_new_team(client, admin)
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    member = sign_up(client, email)
    join(client, in_team, member, email, "member")
    switched = client.post("/auth/switch", json={"organisation_id": team_id}, headers=member)
    assert switched.status_code == 200, switched.text
    member_in_team = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    agent_id = make_agent(client, in_team)
    shared = client.put(f"/agents/{agent_id}/sharing", json={"role": "member"}, headers=in_team)
    assert shared.status_code == 200, shared.text

    for hour in (1, 2):
        make_schedule(client, member_in_team, agent_id, f"0 {hour} * * *")
    over = client.post(f"/agents/{agent_id}/schedules", json={"cron": "0 3 * * *", "input": "x"},
                       headers=member_in_team)  # fmt: skip
    assert over.status_code == 409
    assert over.json()["error"]["details"] == {"limit": 2, "per": "agent"}
    # the member's schedules leave the owner's cap on their own agent untouched
    for hour in (1, 2):
        make_schedule(client, in_team, agent_id, f"0 {hour} * * *")

    make_schedule(client, in_team, make_agent(client, in_team), "0 5 * * *")  # the third
    over_all = client.post(
        f"/agents/{make_agent(client, in_team)}/schedules",
        json={"cron": "0 6 * * *", "input": "x"}, headers=in_team,
    )  # fmt: skip
    assert over_all.status_code == 409
    assert over_all.json()["error"]["code"] == "SCHEDULE_LIMIT_REACHED"
    assert over_all.json()["error"]["details"] == {"limit": 3, "per": "owner"}
