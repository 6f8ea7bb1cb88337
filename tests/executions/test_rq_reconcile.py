"""A worker that dies between taking a job off the queue and registering it as started leaves
the job in rq's intermediate queue, marked queued: the server's reconciler enqueues it again
(rq itself would only clean it in a worker's maintenance, minutes later)."""

from __future__ import annotations

from pasar_core.executions.rq_queue import RQ_QUEUE
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from tests.executions.test_rq_executor import (  # noqa: F401 (fixtures)
    login,
    redis_url,
    rq_client,
    rq_settings,
    scripted_agent,
    start_run,
    start_worker,
    wait_for,
)


def test_a_job_stuck_in_the_intermediate_queue_is_enqueued_again(
    rq_client: TestClient,  # noqa: F811
    start_worker,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> None:
    headers = login(rq_client)
    agent_id = scripted_agent(rq_client, headers)
    execution_id = start_run(rq_client, headers, agent_id)
    redis = Redis.from_url(redis_url)
    queue = Queue(RQ_QUEUE, connection=redis)
    # What a worker killed right after its BLMOVE leaves behind: the job off the queue, in the
    # intermediate queue, never registered as started, its status still "queued".
    moved = redis.lmove(queue.key, queue.intermediate_queue_key, "RIGHT", "LEFT")
    assert moved in (execution_id, execution_id.encode())
    assert redis.lpos(queue.key, execution_id) is None
    start_worker()
    run = wait_for(rq_client, headers, execution_id, lambda r: r["status"] == "succeeded", 90)
    assert run["status"] == "succeeded", run
    assert run["attempts"] == 1  # enqueued again, run once
    assert redis.lpos(queue.intermediate_queue_key, execution_id) is None  # and tidied
