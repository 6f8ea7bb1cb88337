"""The rq executor with a real Redis server and real `pasar worker` processes (concurrent
workers: many runs on one event loop, no work horses)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import psutil
import pytest
from pasar_core.settings import Settings
from pasar_core.testing import PostgresForTests
from pasar_google_workspace.emulator.state import EmulatorState
from pasar_google_workspace.testing import PUBLIC_URL, RunningEmulator, emulator_client
from rq.job import Job, JobStatus
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.consent import Browser
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

    def start(*args: str, **extra: str) -> subprocess.Popen[bytes]:
        return processes_started.start(
            [sys.executable, "-m", "pasar", "worker", *args], env=env | extra,
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


LINE = "from a worker\n"


def scripted_agent(
    client: TestClient, headers: dict[str, str], delay_ms: int = 0, path: str = "rq.txt"
) -> str:
    """An agent that appends one line to `path` (a `write`), then answers."""
    args = {"path": path, "content": LINE, "mode": "append"}
    script = [
        {"tool_calls": [{"name": "txt_write", "args": args}]},
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


def written(settings: Settings, name: str = "rq.txt") -> str:
    """What the agents appended to files called `name` (the side effects, counted)."""
    files = list(settings.files_root.rglob(name))
    return "".join(path.read_text() for path in files)


def start_run(client: TestClient, headers: dict[str, str], agent_id: str) -> str:
    body = {"input": "go", "parameters": {"wait": False}}
    response = client.post(f"/agents/{agent_id}/execute", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["execution_id"])


def rq_workers(redis_url: str) -> list[Any]:
    from redis import Redis
    from rq import Worker

    return list(Worker.all(connection=Redis.from_url(redis_url)))


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


def test_a_worker_runs_many_runs_at_once_on_one_process(
    rq_client: TestClient, start_worker, redis_url: str, rq_settings: Settings
) -> None:
    """K runs whose model waits are all in flight on one worker process at the same moment,
    and rq sees them as that worker's executions."""
    k = 12
    worker = start_worker("--concurrency", "50")
    headers = login(rq_client)
    # one file per run: concurrent appends to one file would race in the files plugin
    # Each model waits 20 s: long enough that the first run is still waiting when the worker
    # takes the last one, even on a loaded machine.
    agents = [scripted_agent(rq_client, headers, 20_000, f"many/{i}.txt") for i in range(k)]
    ids = [start_run(rq_client, headers, agent_id) for agent_id in agents]
    deadline = time.monotonic() + 60
    executing = 0
    while time.monotonic() < deadline:
        workers = rq_workers(redis_url)
        executing = sum(w.current_execution_count for w in workers)
        if executing == k:
            break
        time.sleep(0.1)
    assert executing == k, f"{executing} of {k} runs in flight"
    assert [w.pid for w in rq_workers(redis_url)] == [worker.pid]  # one process holds them all
    assert len(psutil.Process(worker.pid).children(recursive=True)) == 0  # no work horses
    for execution_id in ids:
        run = wait_for(rq_client, headers, execution_id, lambda r: r["status"] != "running"
                       and r["status"] != "queued", 90)  # fmt: skip
        assert run["status"] == "succeeded", run
        assert run["attempts"] == 1
    assert written(rq_settings, "*.txt") == LINE * k


def test_a_killed_worker_after_a_write_never_writes_again(
    rq_client: TestClient, start_worker, rq_settings: Settings
) -> None:
    """SIGKILL right after the tool's side effect: another worker resumes the run from its
    recorded steps; the write is not repeated (the model is told it was interrupted when its
    result was not recorded yet) and the run ends exactly once."""
    worker = start_worker()
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=3000)
    execution_id = start_run(rq_client, headers, agent_id)
    deadline = time.monotonic() + 60
    while written(rq_settings) != LINE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written(rq_settings) == LINE
    worker.kill()
    worker.wait(10)
    start_worker()
    ended = wait_for(rq_client, headers, execution_id,
                     lambda r: r["status"] in ("succeeded", "failed", "cancelled"), 120)  # fmt: skip
    assert ended["status"] == "succeeded", ended
    assert ended["attempts"] == 2
    assert written(rq_settings) == LINE  # once
    types = [step["type"] for step in ended["steps"]]
    assert types == ["model_call", "tool_call", "tool_result", "model_call"], types
    events = rq_client.get(f"/executions/{execution_id}/events", headers=headers)
    ends = [line for line in events.text.splitlines() if '"status": "succeeded"' in line]
    assert len(ends) == 1


def test_a_run_interrupted_too_often_fails_with_the_reason(
    rq_settings: Settings, start_worker
) -> None:
    settings = rq_settings.with_overrides(max_interruptions=0)
    settings.ensure_data_dir()
    with TestClient(create_app(settings)) as client:
        worker = start_worker()
        headers = login(client)
        agent_id = scripted_agent(client, headers, delay_ms=30_000)
        execution_id = start_run(client, headers, agent_id)
        running = wait_for(client, headers, execution_id, lambda r: r["status"] == "running")
        assert running["status"] == "running", running
        worker.kill()
        worker.wait(10)
        ended = wait_for(client, headers, execution_id, lambda r: r["status"] != "running", 60)
    assert ended["status"] == "failed", ended
    assert "interrupted 1 times" in ended["error"]


def test_cancel_a_run_on_a_worker(rq_client: TestClient, start_worker, redis_url: str) -> None:
    worker = start_worker()
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=60_000)
    execution_id = start_run(rq_client, headers, agent_id)
    running = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "running")
    assert running["status"] == "running", running
    cancelled = rq_client.post(f"/executions/{execution_id}/cancel", headers=headers).json()
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["error"] == "cancelled on request"
    # The worker heard the cancel notification: the run's task was cancelled mid-model-call
    # (its scripted reply was a minute away) and the job ended; the worker keeps serving.
    job = wait_for_job(redis_url, execution_id, JobStatus.FINISHED)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "cancelled"
    assert worker.poll() is None
    assert [w.current_execution_count for w in rq_workers(redis_url)] == [0]
    assert [step["type"] for step in cancelled["steps"]] == []


def test_a_plan_execute_run_resumed_by_another_worker_keeps_its_plan(
    rq_client: TestClient, start_worker, rq_settings: Settings
) -> None:
    """SIGKILL after a step's write: the run resumes from the recorded plan (the plan is not
    asked for again) and the write is not repeated."""
    worker = start_worker()
    headers = login(rq_client)
    args = {"path": "rq.txt", "content": LINE, "mode": "append"}
    script = [
        {"content": "1. Append the line\n2. Answer"},
        {"tool_calls": [{"name": "txt_write", "args": args}]},
        {"content": "appended"},
        {"content": "written by a planning worker"},
    ]
    config = {"model": "scripted", "model_options": {"script": script, "delay_ms": 3000},
              "strategy": "plan_execute"}  # fmt: skip
    body = {"name": "rq-plan", "tools": ["txt:write"], "config": config}
    agent_id = rq_client.post("/agents", json=body, headers=headers).json()["agent_id"]
    execution_id = start_run(rq_client, headers, agent_id)
    deadline = time.monotonic() + 60
    while written(rq_settings) != LINE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written(rq_settings) == LINE
    worker.kill()
    worker.wait(10)
    start_worker()
    ended = wait_for(rq_client, headers, execution_id,
                     lambda r: r["status"] in ("succeeded", "failed", "cancelled"), 120)  # fmt: skip
    assert ended["status"] == "succeeded", ended
    assert ended["attempts"] == 2
    assert written(rq_settings) == LINE  # once
    steps = ended["steps"]
    planned = [
        s for s in steps if s["type"] == "model_call" and s["content"].startswith("1. Append")
    ]
    assert len(planned) == 1  # the resumed run went on with its recorded plan
    first_plan = next(s for s in steps if s["type"] == "plan")
    assert [item["title"] for item in first_plan["steps"]] == ["Append the line", "Answer"]
    assert [s["type"] for s in steps].count("tool_call") == 1


def test_mixed_approval_decisions_resume_the_run_on_a_worker(
    rq_client: TestClient, start_worker, rq_settings: Settings
) -> None:
    start_worker()
    headers = login(rq_client)
    writes = [{"name": "txt_write", "args": {"path": f"{name}.txt", "content": name}}
              for name in ("kept", "edited", "refused")]  # fmt: skip
    script = [{"tool_calls": writes}, {"content": "decided"}]
    config = {"model": "scripted", "model_options": {"script": script},
              "approval": {"require_for": ["write"]}}  # fmt: skip
    body = {"name": "rq-approval", "tools": ["txt:write"], "config": config}
    agent_id = rq_client.post("/agents", json=body, headers=headers).json()["agent_id"]
    execution_id = start_run(rq_client, headers, agent_id)
    paused = wait_for(rq_client, headers, execution_id,
                      lambda r: r["status"] == "awaiting_approval", 60)  # fmt: skip
    assert paused["executor"] == "rq"
    calls = {call["args"]["path"]: call for call in paused["pending_approvals"]}
    kinds: dict[str, dict[str, Any]] = {"kept.txt": {"decision": "approve"}, "refused.txt": {"decision": "reject"},
             "edited.txt": {"decision": "edit", "args": {"path": "edited.txt", "content": "new"}}}  # fmt: skip
    decisions = [{"tool_call_id": call["tool_call_id"], "args_hash": call["args_hash"]}
                 | kinds[path] for path, call in calls.items()]  # fmt: skip
    decided = rq_client.post(f"/executions/{execution_id}/approval",
                             json={"decisions": decisions}, headers=headers)  # fmt: skip
    assert decided.status_code in (200, 202), decided.text
    done = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "succeeded", 60)
    assert done["status"] == "succeeded", done
    assert written(rq_settings, "kept.txt") == "kept"
    assert written(rq_settings, "edited.txt") == "new"  # the worker ran the edited call
    assert written(rq_settings, "refused.txt") == ""


def test_runs_queued_before_redis_lost_its_data_still_run(
    rq_client: TestClient, start_worker, redis_url: str
) -> None:
    """The executions table is the truth: runs acknowledged as queued whose jobs Redis lost
    are enqueued again by the server's reconciler and run."""
    from redis import Redis

    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers)
    ids = [start_run(rq_client, headers, agent_id) for _ in range(3)]
    Redis.from_url(redis_url).flushall()
    start_worker()
    for execution_id in ids:
        run = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "succeeded", 60)
        assert run["status"] == "succeeded", run


def test_redis_down_is_a_503_and_queues_nothing(pasar_settings: Settings) -> None:
    from redis import Redis

    with redis_server() as url:
        settings = pasar_settings.with_overrides(redis_url=url, **TIMING)
        settings.ensure_data_dir()
        with TestClient(create_app(settings)) as client:
            headers = login(client)
            agent_id = scripted_agent(client, headers)
            cached = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]},
                      "cache_ttl_s": 60}  # fmt: skip
            cached_id = client.post("/agents", json={"name": "c", "config": cached},
                                    headers=headers).json()["agent_id"]  # fmt: skip
            Redis.from_url(url).shutdown(nosave=True)
            assert client.get("/readyz").status_code == 503
            response = client.post(f"/agents/{agent_id}/execute",
                                   json={"input": "go"}, headers=headers)  # fmt: skip
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "UNAVAILABLE"
            # an inline run of an agent with a result cache in Redis: 503, nothing created
            inline = {"input": "go", "parameters": {"executor": "inline"}}
            response = client.post(f"/agents/{cached_id}/execute", json=inline, headers=headers)
            assert response.status_code == 503, response.text
            listed = client.get(f"/agents/{cached_id}/executions", headers=headers).json()
            assert listed["executions"] == []
            runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()
            assert [r["status"] for r in runs["executions"]] == ["failed"]  # none left queued


def test_a_draining_server_still_queues_rq_runs_and_refuses_inline_ones(
    rq_client: TestClient,
) -> None:
    """While a server drains (SIGTERM), a run for the queue is still accepted (a worker runs
    it, not this process: a rolling restart of API processes refuses none), an inline one not."""
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers)
    assert rq_client.portal is not None
    rq_client.portal.call(rq_client.app_state["runs"].begin_drain)  # what SIGTERM does
    assert rq_client.get("/readyz").status_code == 503
    queued = rq_client.post(f"/agents/{agent_id}/execute", headers=headers,
                            json={"input": "go", "parameters": {"wait": True}})  # fmt: skip
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    inline = rq_client.post(f"/agents/{agent_id}/execute", headers=headers,
                            json={"input": "go", "parameters": {"executor": "inline"}})  # fmt: skip
    assert inline.status_code == 503
    assert inline.json()["error"]["code"] == "UNAVAILABLE"


def test_sigterm_drains_a_worker_and_another_resumes_its_runs(
    rq_client: TestClient, start_worker, redis_url: str, rq_settings: Settings
) -> None:
    """SIGTERM: the worker takes no new jobs, gives its runs `PASAR_DRAIN_S` to finish, hands
    the rest back to the queue (recorded, and requeued through rq's retry) and exits; another
    worker resumes them."""
    import signal

    worker = start_worker(PASAR_DRAIN_S="1")
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers, delay_ms=4000)
    execution_id = start_run(rq_client, headers, agent_id)
    running = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "running")
    assert running["status"] == "running", running
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    handed = rq_client.get(f"/executions/{execution_id}", headers=headers).json()
    assert handed["status"] == "queued", handed
    assert rq_job(redis_url, execution_id).get_status() == JobStatus.QUEUED
    assert rq_workers(redis_url) == []  # it left rq's registry
    start_worker()
    ended = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "succeeded", 60)
    assert ended["status"] == "succeeded", ended
    assert ended["attempts"] == 2
    assert written(rq_settings) == LINE


@pytest.mark.timeout(900)  # 20 worker start-ups, each killed; slow under coverage and load
def test_workers_killed_at_random_points_never_repeat_a_write(
    rq_settings: Settings, start_worker, redis_url: str
) -> None:
    """SIGKILL of the worker at 12 random points while runs write (append a line: counted) and
    read: every run ends exactly once, succeeded, and no write happened twice (a write whose
    call was recorded but not its result is reported to the model as interrupted)."""
    import random

    rng = random.Random(10)
    settings = rq_settings.with_overrides(max_interruptions=100)
    settings.ensure_data_dir()
    worker_env = {"PASAR_MAX_INTERRUPTIONS": "100"}
    with TestClient(create_app(settings)) as client:
        headers = login(client)
        ids: dict[str, str] = {}

        def submit() -> None:
            name = f"kill/{len(ids)}.txt"
            script = [
                {"tool_calls": [{"name": "txt_write",
                                 "args": {"path": name, "content": LINE, "mode": "append"}}]},
                {"tool_calls": [{"name": "txt_read", "args": {"path": name}}]},
                {"content": "done"},
            ]  # fmt: skip
            config = {"model": "scripted", "model_options": {"script": script, "delay_ms": 400}}
            body = {"name": "k", "tools": ["txt:write", "txt:read"], "config": config}
            agent_id = client.post("/agents", json=body, headers=headers).json()["agent_id"]
            ids[name] = start_run(client, headers, agent_id)

        for _ in range(3):
            submit()
        for _ in range(12):
            submit()
            worker = start_worker(**worker_env)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                w.pid == worker.pid and w.current_execution_count for w in rq_workers(redis_url)
            ):
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.2))
            worker.kill()
            worker.wait(10)
        start_worker(**worker_env)
        for name, execution_id in ids.items():
            run = wait_for(client, headers, execution_id,
                           lambda r: r["status"] in ("succeeded", "failed", "cancelled"), 180)  # fmt: skip
            assert run["status"] == "succeeded", run
            lines = written(settings, name.split("/")[1]).count(LINE)
            assert lines <= 1, (name, run["steps"])
            results = [s for s in run["steps"] if s["type"] == "tool_result"]
            if lines == 0:  # killed between recording the call and writing: told, not redone
                assert results[0]["error"].startswith("INTERRUPTED"), run["steps"]
            events = client.get(f"/executions/{execution_id}/events", headers=headers).text
            terminal = [line for line in events.splitlines()
                        if line.startswith("data: ") and '"status": "succeeded"' in line]  # fmt: skip
            assert len(terminal) == 1, events


@pytest.fixture
def shop_dsn(pasar_postgres: PostgresForTests) -> Iterator[str]:
    """A `postgresql://` URL to a fresh database with a `sent` table (one row per effect)."""
    name = f"pasar_kill_{uuid.uuid4().hex[:10]}"
    dsn = make_url(pasar_postgres.create_database(name)).set(drivername="postgresql")
    url = dsn.render_as_string(hide_password=False)
    asyncio.run(_sql(url, "CREATE TABLE effects (run text NOT NULL)"))
    try:
        yield url
    finally:
        pasar_postgres.drop_database(name)


async def _sql(dsn: str, statement: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [dict(row) for row in await connection.fetch(statement)]
    finally:
        await connection.close()


def where_is_job(redis_url: str, execution_id: str) -> dict[str, Any]:
    """The rq job of a run that did not finish: its status and the lists that hold it."""
    from redis import Redis

    redis = Redis.from_url(redis_url)
    job = rq_job(redis_url, execution_id)
    lists = {key.decode(): execution_id.encode() in redis.lrange(key, 0, -1)
             for key in redis.scan_iter("rq:queue:*") if redis.type(key) == b"list"}  # fmt: skip
    return {"status": job.get_status(), "origin": job.origin, "in_lists": lists,
            "started": [k.decode() for k in redis.scan_iter("rq:wip:*")
                        if redis.zscore(k, execution_id) is not None]}  # fmt: skip


def sent_with_subject(state: EmulatorState, subject: str) -> int:
    """Emails the emulator's Gmail sent with this subject (the `send` side effects, counted)."""
    return sum(
        1
        for message in list(state.messages.values())
        if "SENT" in message["labelIds"]
        and {"name": "Subject", "value": subject} in message["payload"]["headers"]
    )


def test_workers_killed_at_random_points_never_repeat_a_send_or_destructive_call(
    rq_settings: Settings, start_worker, redis_url: str, google_emulator: RunningEmulator,
    shop_dsn: str,
) -> None:  # fmt: skip
    """SIGKILL of the worker at random points while runs send (gmail:send to the Google
    emulator: sent messages counted), run destructive SQL (postgres:execute inserting a row:
    rows counted) and read: every run ends exactly once, succeeded, and no send or destructive
    call happened twice (one that was recorded but not its result is reported as interrupted)."""
    import random

    rng = random.Random(11)
    client_settings = emulator_client(google_emulator)
    settings = rq_settings.with_overrides(
        max_interruptions=100, public_url=PUBLIC_URL, oauth_clients={"google": client_settings}
    )
    settings.ensure_data_dir()
    worker_env = {
        "PASAR_MAX_INTERRUPTIONS": "100",
        "PASAR_PUBLIC_URL": PUBLIC_URL,
        "PASAR_GOOGLE_CLIENT_ID": client_settings.client_id,
        "PASAR_GOOGLE_CLIENT_SECRET": client_settings.client_secret or "",
        "PASAR_GOOGLE_BASE_URL": google_emulator.url,
        "PASAR_ALLOW_PRIVATE_HOSTS": ",".join(settings.allow_private_hosts),  # the loopback DSN
    }
    tools = ["gmail:send", "postgres:execute", "txt:read"]
    with TestClient(create_app(settings)) as client:
        headers = login(client)
        ids: dict[str, str] = {}

        def submit() -> None:
            tag = f"kill-{len(ids)}"
            send = {"to": ["bo@example.com"], "subject": tag, "body": "sent once"}
            insert = {"sql": f"INSERT INTO effects (run) VALUES ('{tag}')"}
            script = [
                {"tool_calls": [{"name": "gmail_send", "args": send}]},
                {"tool_calls": [{"name": "postgres_execute", "args": insert}]},
                {"tool_calls": [{"name": "txt_read", "args": {"path": f"{tag}.txt"}}]},
                {"content": "done"},
            ]
            config = {"model": "scripted", "approval": {"require_for": []},
                      "model_options": {"script": script, "delay_ms": 300}}  # fmt: skip
            body = {"name": "k", "tools": tools, "config": config}
            agent = client.post("/agents", json=body, headers=headers).json()
            if agent.get("auth_url"):  # the first agent: consent once for the account
                assert Browser(client).connect(agent["auth_url"]).status_code == 200
            secret = client.put(f"/agents/{agent['agent_id']}/secrets/postgres_dsn",
                                json={"value": shop_dsn}, headers=headers)  # fmt: skip
            assert secret.status_code == 204, secret.text
            ids[tag] = start_run(client, headers, agent["agent_id"])

        for _ in range(2):
            submit()
        killed_holding_runs = 0
        for _ in range(8):
            submit()
            worker = start_worker(**worker_env)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                w.pid == worker.pid and w.current_execution_count for w in rq_workers(redis_url)
            ):
                time.sleep(0.05)
            killed_holding_runs += time.monotonic() < deadline
            time.sleep(rng.uniform(0, 1.5))
            worker.kill()
            worker.wait(10)
        start_worker(**worker_env)
        for tag, execution_id in ids.items():
            run = wait_for(client, headers, execution_id,
                           lambda r: r["status"] in ("succeeded", "failed", "cancelled"), 180)  # fmt: skip
            assert run["status"] == "succeeded", (run, where_is_job(redis_url, execution_id))
            results = {s["tool"]: s for s in run["steps"] if s["type"] == "tool_result"}
            assert set(results) == set(tools), run["steps"]
            rows = Counter(
                row["run"] for row in asyncio.run(_sql(shop_dsn, "SELECT run FROM effects"))
            )
            effects = {"gmail:send": sent_with_subject(google_emulator.state, tag),
                       "postgres:execute": rows[tag]}  # fmt: skip
            for name, count in effects.items():
                assert count <= 1, (tag, name, run["steps"])
                if count == 0:  # killed between recording the call and its effect: told, not redone
                    assert results[name]["error"].startswith("INTERRUPTED"), run["steps"]
            events = client.get(f"/executions/{execution_id}/events", headers=headers).text
            terminal = [line for line in events.splitlines()
                        if line.startswith("data: ") and '"status": "succeeded"' in line]  # fmt: skip
            assert len(terminal) == 1, events
        assert killed_holding_runs > 0  # the kills landed on workers running runs
