"""Schedules fire in the embedded default (no Redis: the server fires into its inline executor):
each tick once, with two firers racing on one database, on a clock the test holds; missed ticks
fire once, for the latest; the runs are ordinary executions marked with their schedule; an
owner who lost access gets no run, and the schedule says why. The last test runs two server
processes on one database, firing on their own clocks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pasar_core.schedules.firer import NOT_A_MEMBER, ScheduleFirer
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
from tests.support.processes import Processes
from tests.support.servers import free_port
from tests.support.teams import in_new_team, join

Headers = dict[str, str]


@pytest.fixture
def quiet_client(pasar_settings: Settings) -> Iterator[TestClient]:
    """A server whose own firer looks once an hour: the test's firers, on the test's clock,
    do the firing."""
    settings = pasar_settings.with_overrides(schedule_poll_s=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def racing_firers(client: TestClient, clock: Clock) -> Callable[[], list[int]]:
    """race() -> how many ticks each of two firers fired in one concurrent pass."""
    base: ScheduleFirer | None = client.app_state["runs"].schedules
    assert base is not None  # no Redis: the server fires
    firers = [base.with_clock(clock) for _ in range(2)]

    async def race() -> list[int]:
        passes = await asyncio.gather(*(firer.fire_due() for firer in firers))
        return [sum(outcome.queued is not None for outcome in done) for done in passes]

    def run() -> list[int]:
        assert client.portal is not None
        return client.portal.call(race)

    return run


def finished(client: TestClient, headers: Headers, execution_id: str) -> dict[str, Any]:
    for _ in range(300):
        run = client.get(f"/executions/{execution_id}", headers=headers).json()
        if run["status"] not in ("queued", "running"):
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} did not finish: {run}")


def scheduled_executions(client: TestClient, headers: Headers, agent_id: str) -> list[Any]:
    listed = client.get(f"/agents/{agent_id}/executions?first=100", headers=headers).json()
    return [run for run in listed["executions"] if run["schedule_id"]]


def test_a_tick_fires_once_with_two_firers_racing_and_missed_ticks_fire_once(
    quiet_client: TestClient,
) -> None:
    client = quiet_client
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    schedule = make_schedule(client, headers, agent_id, "*/5 * * * *", timezone="Europe/Paris")
    tick = datetime.fromisoformat(schedule["next_run_at"])
    assert tick > datetime.now(UTC)
    assert tick.minute % 5 == 0
    assert tick.second == 0
    clock = Clock(tick - timedelta(microseconds=1))
    race = racing_firers(client, clock)
    services = services_of(client)
    assert client.portal is not None

    assert race() == [0, 0]  # not yet due
    clock.at = tick
    passes = [race() for _ in range(4)]
    assert sum(map(sum, passes)) == 1, passes  # one run, whichever firer won
    runs = client.portal.call(fired_runs, services, schedule["id"])
    assert [tick_ for tick_, _, _ in runs] == [tick]

    # The run is an ordinary execution of the owner, marked with its schedule (REST, GraphQL).
    [listed] = scheduled_executions(client, headers, agent_id)
    assert listed["schedule_id"] == schedule["id"]
    run = finished(client, headers, listed["execution_id"])
    assert run["status"] == "succeeded", run
    assert run["input"] == "send the digest"
    assert run["output"]["message"] == "the digest"
    assert run["executor"] == "inline"
    assert not run["cached"]
    document = "query($id: ID!) { execution(id: $id) { scheduleId status } }"
    answer = client.post("/graphql", json={"query": document, "variables": {"id": run["execution_id"]}},
                         headers=headers).json()  # fmt: skip
    assert answer["data"]["execution"] == {"scheduleId": schedule["id"], "status": "succeeded"}

    # Nothing fired for an hour and two minutes: twelve ticks missed, the latest fires once.
    clock.at = tick + timedelta(hours=1, minutes=2)
    assert sum(race()) == 1
    assert sum(race()) == 0
    runs = client.portal.call(fired_runs, services, schedule["id"])
    assert [tick_ for tick_, _, _ in runs] == [tick, tick + timedelta(hours=1)]
    row = client.portal.call(schedule_row, services, schedule["id"])
    assert row.next_run_at == tick + timedelta(hours=1, minutes=5)
    assert row.last_fired_at == tick + timedelta(hours=1)
    listed_schedule = client.get(f"/agents/{agent_id}/schedules", headers=headers).json()
    assert listed_schedule["schedules"][0]["last_fired_at"] is not None

    # The audit log names the schedule that started the run, acting as its owner (the admin
    # of their personal organisation, so they read its log).
    document = (
        '{ auditLog(action: "execution.started", first: 10) { entries { actorVia details } } }'
    )
    answer = client.post("/graphql", json={"query": document}, headers=headers).json()
    entries = answer["data"]["auditLog"]["entries"]
    assert [(e["actorVia"], e["details"].get("schedule_id")) for e in entries] == [
        ("schedule", schedule["id"])
    ] * 2


def test_many_schedules_due_at_one_tick_each_fire_once(quiet_client: TestClient) -> None:
    client = quiet_client
    headers = sign_up(client)
    agents = [make_agent(client, headers) for _ in range(3)]
    schedules = [make_schedule(client, headers, agent, "0 * * * *", timezone=zone)
                 for agent in agents for zone in ("UTC", "Asia/Kolkata", "America/New_York",
                                                  "Australia/Adelaide")]  # fmt: skip
    ticks = {datetime.fromisoformat(s["next_run_at"]) for s in schedules}
    clock = Clock(max(ticks))  # every one of them due (Kolkata and Adelaide are half-hour zones)
    race = racing_firers(client, clock)
    assert client.portal is not None

    totals = [race() for _ in range(3)]
    assert sum(map(sum, totals)) == len(schedules), totals
    services = services_of(client)
    for schedule in schedules:
        runs = client.portal.call(fired_runs, services, schedule["id"])
        assert len(runs) == 1, (schedule, runs)
    for agent in agents:
        for run in scheduled_executions(client, headers, agent):
            assert finished(client, headers, run["execution_id"])["status"] == "succeeded"


def test_paused_schedules_do_not_fire_and_resume_from_the_next_tick(
    quiet_client: TestClient,
) -> None:
    client = quiet_client
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    schedule = make_schedule(client, headers, agent_id, "0 9 * * *", timezone="Europe/Paris")
    base = f"/agents/{agent_id}/schedules/{schedule['id']}"
    paused = client.post(f"{base}/pause", headers=headers)
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["next_run_at"] is None
    clock = Clock(datetime.fromisoformat(schedule["next_run_at"]) + timedelta(days=3))
    race = racing_firers(client, clock)
    assert race() == [0, 0]
    resumed = client.post(f"{base}/resume", headers=headers).json()
    assert resumed["paused"] is False
    assert datetime.fromisoformat(resumed["next_run_at"]) == datetime.fromisoformat(
        schedule["next_run_at"]
    )  # the next 09:00 in Paris after now
    assert sum(race()) == 1  # three days late: once, for the latest tick


def test_an_owner_removed_from_the_team_gets_no_run_and_the_schedule_says_why(
    quiet_client: TestClient,
) -> None:
    client = quiet_client
    admin = sign_up(client)
    in_team, _ = in_new_team(client, admin)
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    member = sign_up(client, email)
    entry = join(client, in_team, member, email, "member")
    switched = client.post("/auth/switch", json={"organisation_id": _team_of(client, member)},
                           headers=member)  # fmt: skip
    member_in_team = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    agent_id = make_agent(client, in_team)
    shared = client.put(f"/agents/{agent_id}/sharing", json={"role": "member"}, headers=in_team)
    assert shared.status_code == 200, shared.text
    schedule = make_schedule(client, member_in_team, agent_id, "0 * * * *")
    doomed = make_schedule(client, in_team, make_agent(client, in_team), "0 * * * *")
    assert client.delete(f"/members/{entry['user_id']}", headers=in_team).status_code == 204
    assert client.delete(f"/agents/{doomed['agent_id']}", headers=in_team).status_code == 204

    clock = Clock(datetime.fromisoformat(schedule["next_run_at"]))
    assert racing_firers(client, clock)() == [0, 0]
    services = services_of(client)
    assert client.portal is not None
    assert client.portal.call(fired_runs, services, schedule["id"]) == []
    row = client.portal.call(schedule_row, services, schedule["id"])
    assert row.paused_at is not None
    assert row.next_run_at is None
    assert row.paused_reason == NOT_A_MEMBER
    # a deleted agent's schedules went with it
    with pytest.raises(AssertionError):
        client.portal.call(schedule_row, services, doomed["id"])


def _team_of(client: TestClient, headers: Headers) -> str:
    listed = client.get("/organisations", headers=headers).json()["organisations"]
    [team] = [org for org in listed if org["name"] == "team"]
    return str(team["id"])


def serve_beside(processes: Processes, settings: Settings) -> str:
    """A `pasar serve` process on `settings`' database (no Redis: it fires schedules too)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PASAR_DEV")}
    env |= {"DATABASE_URL": settings.database_url or "", "PASAR_DATA_DIR": str(settings.data_dir),
            "PASAR_SECRET_KEY": settings.secret_key or "", "PASAR_PORT": str(port),
            "PASAR_SCHEDULE_MIN_INTERVAL_S": "1", "PASAR_SCHEDULE_POLL_S": "0.2"}  # fmt: skip
    process = processes.start([sys.executable, "-m", "pasar", "serve", "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(900):  # the bound only ends a broken test
        assert process.poll() is None, f"pasar serve exited with {process.returncode}"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("pasar serve did not become ready")


def test_two_server_processes_on_one_database_fire_each_tick_once(
    pasar_settings: Settings, processes_started: Processes
) -> None:
    """This process's server and a `pasar serve` process (their own loops, pools and firers,
    on real clocks) and a schedule every second: every tick that fired has exactly one run."""
    settings = pasar_settings.with_overrides(schedule_min_interval_s=1, schedule_poll_s=0.2)
    with TestClient(create_app(settings), raise_server_exceptions=False) as first:
        second = serve_beside(processes_started, settings)
        headers = sign_up(first)
        agent_id = make_agent(first, headers)
        schedule = make_schedule(first, headers, agent_id, "* * * * * *")
        services = services_of(first)
        assert first.portal is not None
        runs: list[Any] = []
        for _ in range(600):
            runs = first.portal.call(fired_runs, services, schedule["id"])
            if len(runs) >= 6:
                break
            time.sleep(0.1)
        paused = httpx.post(f"{second}/agents/{agent_id}/schedules/{schedule['id']}/pause",
                            headers=headers)  # fmt: skip
        assert paused.status_code == 200, paused.text
        runs = first.portal.call(fired_runs, services, schedule["id"])
        ticks = [tick for tick, _, _ in runs]
        assert len(ticks) >= 6, runs
        assert len(set(ticks)) == len(ticks)  # one run per tick
        assert all(tick.microsecond == 0 for tick in ticks)
        assert ticks == sorted(ticks)
        listed = scheduled_executions(first, headers, agent_id)
        assert len(listed) == len(ticks)
        for run in listed:
            assert finished(first, headers, run["execution_id"])["status"] == "succeeded"


def test_a_member_who_may_no_longer_run_the_agent_gets_no_run_and_a_broken_row_blocks_nothing(
    quiet_client: TestClient,
) -> None:
    client = quiet_client
    admin = sign_up(client)
    in_team, team_id = in_new_team(client, admin)
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    member = sign_up(client, email)
    join(client, in_team, member, email, "member")
    switched = client.post("/auth/switch", json={"organisation_id": team_id}, headers=member)
    member_in_team = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    agent_id = make_agent(client, in_team)
    assert client.put(f"/agents/{agent_id}/sharing", json={"role": "member"},
                      headers=in_team).status_code == 200  # fmt: skip
    unshared = make_schedule(client, member_in_team, agent_id, "0 * * * *")
    broken = make_schedule(client, in_team, agent_id, "0 * * * *")
    healthy = make_schedule(client, in_team, agent_id, "0 * * * *")
    private = client.put(f"/agents/{agent_id}/sharing", json={"role": None}, headers=in_team)
    assert private.status_code == 200, private.text
    services = services_of(client)
    assert client.portal is not None

    async def break_timezone() -> None:  # a zone the tz database has since dropped
        async with services.sessionmaker.begin() as session:
            row = await session.get(Schedule, uuid.UUID(broken["id"]))
            assert row is not None
            row.timezone = "Nowhere/Gone"

    client.portal.call(break_timezone)
    clock = Clock(datetime.fromisoformat(healthy["next_run_at"]))
    assert sum(racing_firers(client, clock)()) == 1  # the healthy one, past the broken row
    assert len(client.portal.call(fired_runs, services, healthy["id"])) == 1
    for paused in (unshared, broken):
        assert client.portal.call(fired_runs, services, paused["id"]) == []
        row = client.portal.call(schedule_row, services, paused["id"])
        assert row.paused_at is not None
        assert row.next_run_at is None
    assert client.portal.call(schedule_row, services, unshared["id"]).paused_reason == (
        f"no agent with id {agent_id!r}"
    )
    assert "no longer gives a next tick" in (
        client.portal.call(schedule_row, services, broken["id"]).paused_reason or ""
    )
    # The member sees nothing of the now private agent, their schedule included.
    assert client.get(f"/agents/{agent_id}/schedules", headers=member_in_team).status_code == 404


def test_the_unique_index_refuses_a_second_run_of_a_tick_even_when_the_claim_is_undone(
    quiet_client: TestClient,
) -> None:
    """The database's last word: a schedule whose `next_run_at` was put back on a tick that
    already has its run (as a firer acting on a stale read would) gets no second run, and
    moves on."""
    client = quiet_client
    headers = sign_up(client)
    schedule = make_schedule(client, headers, make_agent(client, headers), "0 * * * *")
    tick = datetime.fromisoformat(schedule["next_run_at"])
    race = racing_firers(client, Clock(tick))
    services = services_of(client)
    assert client.portal is not None
    assert sum(race()) == 1

    async def rewind() -> None:
        async with services.sessionmaker.begin() as session:
            row = await session.get(Schedule, uuid.UUID(schedule["id"]))
            assert row is not None
            row.next_run_at = tick

    client.portal.call(rewind)
    assert sum(race()) == 0  # the insert was refused by uq_executions_schedule_tick
    assert [t for t, _, _ in client.portal.call(fired_runs, services, schedule["id"])] == [tick]
    row = client.portal.call(schedule_row, services, schedule["id"])
    assert row.next_run_at == tick + timedelta(hours=1)
    assert row.paused_at is None
