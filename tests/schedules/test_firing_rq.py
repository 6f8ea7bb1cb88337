"""Schedules with Redis configured: the workers fire them into the rq queue (the server does
not), each tick once with two workers running, and real `pasar worker` processes run the
runs on a real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from pasar_core.executions.runtime import Runs
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from pasar.lifecycle import running_runs, running_services
from tests.schedules.support import fired_runs, make_agent, make_schedule, services_of
from tests.support.processes import Processes
from tests.support.redis_server import redis_server

Headers = dict[str, str]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def rq_settings(pasar_settings: Settings, redis_url: str) -> Settings:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    return pasar_settings.with_overrides(
        redis_url=redis_url, heartbeat_s=1.0, stale_after_s=4.0, schedule_min_interval_s=1
    )


@pytest.fixture
def rq_client(rq_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(rq_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def start_worker(
    rq_settings: Settings, processes_started: Processes
) -> Callable[..., subprocess.Popen[bytes]]:
    """start(*args) -> a `pasar worker` process that fires schedules every 0.2 s."""
    env = {
        **os.environ,
        "DATABASE_URL": rq_settings.database_url or "",
        "REDIS_URL": rq_settings.redis_url or "",
        "PASAR_DATA_DIR": str(rq_settings.data_dir),
        "PASAR_SECRET_KEY": rq_settings.secret_key or "",
        "PASAR_HEARTBEAT_S": "1",
        "PASAR_STALE_AFTER_S": "4",
        "PASAR_SCHEDULE_POLL_S": "0.2",
    }

    def start(*args: str) -> subprocess.Popen[bytes]:
        return processes_started.start(
            [sys.executable, "-m", "pasar", "worker", *args], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return start


def sign_up(client: TestClient) -> Headers:
    credentials = {"email": f"rq-{uuid.uuid4().hex[:10]}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def runs_of(client: TestClient, schedule_id: str) -> list[Any]:
    assert client.portal is not None
    return client.portal.call(fired_runs, services_of(client), schedule_id)


def wait_until(check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_with_redis_the_server_leaves_firing_to_the_workers(rq_client: TestClient) -> None:
    runs: Runs = rq_client.app_state["runs"]
    assert runs.schedules is None


def test_two_worker_firers_racing_on_one_tick_queue_one_run_that_a_worker_runs(
    rq_client: TestClient, rq_settings: Settings, start_worker: Callable[..., Any]
) -> None:
    client = rq_client
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    # once a year, so the workers on real clocks never reach it: the test's clock does
    schedule = make_schedule(client, headers, agent_id, "0 0 1 1 *", timezone="Pacific/Auckland")
    tick = datetime.fromisoformat(schedule["next_run_at"])
    quiet = rq_settings.with_overrides(schedule_poll_s=3600)

    async def race() -> list[int]:
        async with (
            running_services(quiet, prepare_database=False) as first_services,
            running_services(quiet, prepare_database=False) as second_services,
        ):
            return await _race(first_services, second_services, tick)

    assert client.portal is not None
    assert sum(client.portal.call(race)) == 1
    runs = runs_of(client, schedule["id"])
    assert [(t, status, executor) for t, status, executor in runs] == [(tick, "queued", "rq")]

    worker = start_worker("--burst")
    assert worker.wait(timeout=180) == 0
    [(_, status, executor)] = runs_of(client, schedule["id"])
    assert (status, executor) == ("succeeded", "rq")


async def _race(first: Services, second: Services, tick: datetime) -> list[int]:
    async with running_runs(first, serve=False) as one, running_runs(second, serve=False) as two:
        assert one.schedules is not None
        assert two.schedules is not None
        firers = [runs.schedules.with_clock(lambda: tick) for runs in (one, two) if runs.schedules]
        counts = [0, 0]
        for _ in range(3):
            passes = await asyncio.gather(*(firer.fire_due() for firer in firers))
            for index, done in enumerate(passes):
                counts[index] += sum(outcome.queued is not None for outcome in done)
        return counts


def test_two_worker_processes_fire_a_per_second_schedule_once_per_tick(
    rq_client: TestClient, start_worker: Callable[..., Any]
) -> None:
    client = rq_client
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    workers = [start_worker(), start_worker()]
    schedule = make_schedule(client, headers, agent_id, "* * * * * *")
    wait_until(lambda: len(runs_of(client, schedule["id"])) >= 4, timeout_s=180)
    paused = client.post(f"/agents/{agent_id}/schedules/{schedule['id']}/pause", headers=headers)
    assert paused.status_code == 200, paused.text
    wait_until(lambda: all(s == "succeeded" for _, s, _ in runs_of(client, schedule["id"])))
    assert all(worker.poll() is None for worker in workers)
    runs = runs_of(client, schedule["id"])
    ticks = [tick for tick, _, _ in runs]
    assert len(set(ticks)) == len(ticks) >= 4  # one run per tick
    assert {executor for _, _, executor in runs} == {"rq"}
    listed = client.get(f"/agents/{agent_id}/executions?first=100", headers=headers).json()
    marked = [run for run in listed["executions"] if run["schedule_id"] == schedule["id"]]
    assert len(marked) == len(ticks)
