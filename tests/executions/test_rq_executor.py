"""The rq executor with a real Redis server and real `pasar worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from pasar_core.executions.executors import RQ_QUEUE
from pasar_core.settings import Settings
from rq.job import Job, JobStatus
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.processes import Processes
from tests.support.redis_server import redis_server

TIMING = {"heartbeat_s": 1.0, "stale_after_s": 4.0}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def rq_settings(pasar_settings: Settings, redis_url: str) -> Settings:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    return pasar_settings.with_overrides(redis_url=redis_url, **TIMING)


@pytest.fixture
def start_worker(
    rq_settings: Settings, processes_started: Processes
) -> Callable[[], subprocess.Popen[bytes]]:
    """start() -> a `pasar worker` process; it and its work horses die with the test."""
    env = {
        **os.environ,
        "DATABASE_URL": rq_settings.database_url or "",
        "REDIS_URL": rq_settings.redis_url or "",
        "PASAR_DATA_DIR": str(rq_settings.data_dir),
        "PASAR_SECRET_KEY": rq_settings.secret_key or "",
        "PASAR_HEARTBEAT_S": "1",
        "PASAR_STALE_AFTER_S": "4",
    }

    def start() -> subprocess.Popen[bytes]:
        return processes_started.start(
            [sys.executable, "-m", "pasar", "worker"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return start


@pytest.fixture
def rq_client(rq_settings: Settings) -> Iterator[TestClient]:
    rq_settings.ensure_data_dir()
    with TestClient(create_app(rq_settings)) as client:
        yield client


def login(client: TestClient) -> dict[str, str]:
    credentials = {"email": "rq@example.com", "password": "correct horse battery staple"}
    client.post("/auth/signup", json=credentials)
    return {
        "Authorization": "Bearer "
        + client.post("/auth/token", json=credentials).json()["access_token"]
    }


def scripted_agent(client: TestClient, headers: dict[str, str], delay_ms: int = 0) -> str:
    script = [
        {
            "tool_calls": [
                {"name": "txt_write", "args": {"path": "rq.txt", "content": "from a worker"}}
            ]
        },
        {"content": "written by a worker"},
    ]
    config = {"model": "scripted", "model_options": {"script": script, "delay_ms": delay_ms}}
    body = {"name": "rq", "tools": ["txt:write"], "config": config}
    return str(client.post("/agents", json=body, headers=headers).json()["agent_id"])


def wait_for(client: TestClient, headers: dict[str, str], execution_id: str,
             done: Callable[[dict[str, Any]], bool], timeout_s: float = 30) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get(f"/executions/{execution_id}", headers=headers).json()
        if done(run) or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def children(worker: subprocess.Popen[bytes]) -> set[int]:
    return {child.pid for child in psutil.Process(worker.pid).children(recursive=True)}


def settled_children(worker: subprocess.Popen[bytes]) -> set[int]:
    """The worker's own helpers (its scheduler) once it is listening: not work horses."""
    deadline = time.monotonic() + 15
    while not children(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return children(worker)


def test_a_run_on_a_worker(rq_client: TestClient, start_worker) -> None:
    start_worker()
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers)
    run = rq_client.post(f"/agents/{agent_id}/execute", json={"input": "go", "parameters": {"timeout_s": 60}},
                         headers=headers).json()  # fmt: skip
    assert run["status"] == "succeeded", run
    assert run["executor"] == "rq"
    assert [step["type"] for step in run["steps"]] == [
        "model_call",
        "tool_call",
        "tool_result",
        "model_call",
    ]
    assert run["output"] == {"message": "written by a worker"}


def test_killed_work_horse_is_retried(rq_client: TestClient, start_worker) -> None:
    worker = start_worker()
    helpers = settled_children(worker)
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=1500)
    run = rq_client.post(f"/agents/{agent_id}/execute", json={"input": "go", "parameters": {"wait": False}},
                         headers=headers).json()  # fmt: skip
    running = wait_for(rq_client, headers, run["execution_id"], lambda r: r["status"] == "running")
    assert running["status"] == "running"
    horses = children(worker) - helpers
    assert horses, "no work horse is running the job"
    for pid in horses:
        os.kill(pid, signal.SIGKILL)
    finished = wait_for(
        rq_client, headers, run["execution_id"], lambda r: r["status"] == "succeeded", 60
    )
    assert finished["status"] == "succeeded", finished
    assert finished["attempts"] >= 2


def rq_job(redis_url: str, execution_id: str) -> Job:
    from redis import Redis
    from rq.serializers import JSONSerializer

    return Job.fetch(execution_id, connection=Redis.from_url(redis_url), serializer=JSONSerializer)


def wait_for_job(
    redis_url: str, execution_id: str, status: JobStatus, timeout_s: float = 30
) -> Job:
    deadline = time.monotonic() + timeout_s
    while True:
        job = rq_job(redis_url, execution_id)
        if job.get_status() == status or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_killed_worker_and_horse_leave_no_run_stuck(
    rq_client: TestClient, start_worker, redis_url: str
) -> None:
    from redis import Redis
    from rq.registry import StartedJobRegistry

    worker = start_worker()
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=20_000)
    run = rq_client.post(f"/agents/{agent_id}/execute", json={"input": "go", "parameters": {"wait": False}},
                         headers=headers).json()  # fmt: skip
    execution_id = run["execution_id"]
    running = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "running")
    assert running["status"] == "running", running
    for pid in [*children(worker), worker.pid]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    ended = wait_for(rq_client, headers, execution_id, lambda r: r["status"] != "running", 30)
    assert ended["status"] == "failed"
    assert "stopped" in ended["error"]

    # rq still lists the job as started. Let the dead worker's leases lapse now instead of
    # waiting for their TTLs: the job's (so the next worker's start-up maintenance finds it
    # abandoned and retries it) and its scheduler's lock (so that worker schedules the retry).
    assert rq_job(redis_url, execution_id).get_status() == JobStatus.STARTED
    redis = Redis.from_url(redis_url)
    started = StartedJobRegistry(RQ_QUEUE, connection=redis)
    members: list[bytes] = list(redis.zrange(started.key, 0, -1))  # type: ignore[arg-type]
    assert members, "the abandoned job is not in rq's started registry"
    redis.zadd(started.key, dict.fromkeys(members, 1))
    redis.delete(*redis.keys("rq:scheduler-lock:*"))
    start_worker()
    retried = wait_for_job(redis_url, execution_id, JobStatus.FINISHED, 60)
    assert retried.get_status() == JobStatus.FINISHED, retried.get_status()
    assert retried.return_value() is None  # the runner refused to start an ended run
    after = rq_client.get(f"/executions/{execution_id}", headers=headers).json()
    assert after["status"] == "failed"
    assert (after["error"], after["attempts"], after["steps"]) == (
        ended["error"], ended["attempts"], ended["steps"],
    )  # fmt: skip


def test_cancel_a_run_on_a_worker(rq_client: TestClient, start_worker, redis_url: str) -> None:
    worker = start_worker()
    helpers = settled_children(worker)
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=60_000)
    run = rq_client.post(f"/agents/{agent_id}/execute", json={"input": "go", "parameters": {"wait": False}},
                         headers=headers).json()  # fmt: skip
    execution_id = run["execution_id"]
    running = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "running")
    assert running["status"] == "running", running
    horses = [psutil.Process(pid) for pid in children(worker) - helpers]
    assert horses, "no work horse is running the job"
    cancelled = rq_client.post(f"/executions/{execution_id}/cancel", headers=headers).json()
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["error"] == "cancelled on request"
    # The work horse heard the cancel notification: its task was cancelled mid-model-call, the
    # job returned "cancelled" and the horse exited (its scripted reply was a minute away).
    job = wait_for_job(redis_url, execution_id, JobStatus.FINISHED)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "cancelled"
    _, alive = psutil.wait_procs(horses, timeout=30)
    assert not alive, "the work horse kept running after the cancel"
    assert worker.poll() is None, "the worker itself must keep serving"
    assert [step["type"] for step in cancelled["steps"]] == []


def test_result_cache_lives_in_redis(rq_client: TestClient, start_worker, redis_url: str) -> None:
    from redis import Redis

    start_worker()
    headers = login(rq_client)
    config = {
        "model": "scripted",
        "model_options": {"script": [{"content": "from cache"}]},
        "cache_ttl_s": 60,
    }
    agent_id = rq_client.post(
        "/agents", json={"name": "c", "config": config}, headers=headers
    ).json()["agent_id"]
    body = {"input": "same question", "parameters": {"timeout_s": 60}}
    first = rq_client.post(f"/agents/{agent_id}/execute", json=body, headers=headers).json()
    assert first["status"] == "succeeded", first
    keys = Redis.from_url(redis_url).keys("pasar:result:*")
    assert len(keys) == 1
    assert 0 < Redis.from_url(redis_url).ttl(keys[0]) <= 60
    second = rq_client.post(f"/agents/{agent_id}/execute", json=body, headers=headers).json()
    assert second["cached"] is True
    assert second["output"] == {"message": "from cache"}
