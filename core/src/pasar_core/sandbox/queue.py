"""The callers' side of the sandbox queue: send a request to a sandbox worker, await its reply.

Requests are RQ jobs on the queue `sandbox` (JSON serializer), served by `pasar worker --queue
sandbox`; processes that only call (the API server, agent workers) never talk to Docker. A job's
reply comes back on a Redis list of its own (`pasar:sandbox:reply:<job id>`), awaited with an
async `BLPOP` bounded by the call's timeout plus `QUEUE_SLACK_S`, so a waiting call holds no
thread. Jobs keep no result in Redis (`result_ttl=0`: the request, with any secrets it carries,
is deleted when the job ends) and expire unserved after the caller stopped waiting (`ttl`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pasar_core.errors import SandboxBusy, SandboxUnavailable
from pasar_core.observability.tracing import Tracing
from pasar_core.sandbox.requests import reply_error

QUEUE_NAME = "sandbox"
JOB_FUNCTION = "pasar_core.sandbox.jobs.serve"
REPLY_PREFIX = "pasar:sandbox:reply:"
REPLY_TTL_S = 120
QUEUE_SLACK_S = 30.0
"""Time a call may spend beyond its own timeout: queueing, a cold container start, the image."""
CONNECT_TIMEOUT_S = 10.0
WORKERS_SEEN_S = 2.0
"""A worker seen serving the queue this recently is not looked up again before each call."""
NO_WORKER = (
    "no sandbox worker serves the queue: start one next to the server with "
    "`pasar worker --queue sandbox` (same REDIS_URL), or run `pasar serve` without REDIS_URL, "
    "which starts its own"
)
NO_QUEUE = (
    "custom tools need the sandbox queue: `pasar serve` starts one by itself when REDIS_URL is "
    "unset; with REDIS_URL (or PASAR_SANDBOX_REDIS_URL), start `pasar worker --queue sandbox`"
)


class SandboxQueue:
    """One per process; safe to share between concurrent calls."""

    def __init__(self, redis_url: str, tracing: Tracing | None = None) -> None:
        from redis import Redis
        from redis.asyncio import Redis as AsyncRedis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.redis_url = redis_url
        self._redis = Redis.from_url(redis_url)
        # No socket timeout on the client that waits for replies: redis-py's default (5 s) would
        # end every BLPOP of a call longer than that; the wait is bounded by BLPOP's own timeout
        # and by `wait_for` in `call`.
        self._async = AsyncRedis.from_url(
            redis_url, socket_timeout=None, socket_connect_timeout=CONNECT_TIMEOUT_S
        )
        self._queue = Queue(QUEUE_NAME, connection=self._redis, serializer=JSONSerializer)
        self._workers_seen_at = float("-inf")
        self.tracing = tracing or Tracing()

    async def close(self) -> None:
        await self._async.aclose()
        self._redis.close()

    def depth(self) -> int:
        """Calls waiting for a sandbox worker (blocking: call it in a thread)."""
        return int(self._queue.count)

    def worker_count(self) -> int:
        from rq import Worker

        return int(Worker.count(connection=self._redis, queue=self._queue))

    def _workers_known(self) -> bool:
        return time.monotonic() - self._workers_seen_at < WORKERS_SEEN_S

    def _enqueue_checked(self, job_id: str, request: dict[str, Any], wait_s: float) -> None:
        """Enqueue, unless no worker serves the queue (looked up at most every few seconds)."""
        if not self._workers_known():
            if self.worker_count() == 0:
                raise SandboxUnavailable(NO_WORKER)
            self._workers_seen_at = time.monotonic()
        self._enqueue(job_id, request, wait_s)

    def _enqueue(self, job_id: str, request: dict[str, Any], wait_s: float) -> None:
        self._queue.enqueue_call(
            JOB_FUNCTION,
            args=(request,),
            job_id=job_id,
            timeout=int(wait_s) + 30,
            ttl=max(1, int(wait_s)),
            result_ttl=0,
            failure_ttl=300,
        )

    async def call(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """The worker's reply (`ok: true`), or the typed error it carries. Waits at most
        `timeout_s + QUEUE_SLACK_S`; `SandboxUnavailable` when no worker serves the queue."""
        wait_s = timeout_s + QUEUE_SLACK_S
        job_id = uuid.uuid4().hex
        op = request.get("op")
        attributes = {"pasar.sandbox.op": op} if isinstance(op, str) else {}
        with self.tracing.span("pasar.sandbox.call", attributes):
            return await self._call(request, job_id, wait_s)

    async def _call(self, request: dict[str, Any], job_id: str, wait_s: float) -> dict[str, Any]:
        import redis.exceptions

        try:
            await asyncio.to_thread(self._enqueue_checked, job_id, request, wait_s)
            popped = await asyncio.wait_for(
                self._async.blpop([REPLY_PREFIX + job_id], timeout=wait_s),
                wait_s + CONNECT_TIMEOUT_S,
            )
        except TimeoutError:
            popped = None
        except redis.exceptions.RedisError as error:
            raise SandboxUnavailable(
                f"the sandbox queue's Redis does not answer ({type(error).__name__}): {NO_QUEUE}"
            ) from None
        if popped is None:
            raise SandboxBusy(
                f"no sandbox worker answered within {wait_s:g} s (all busy, or stopped)",
                details={"waited_s": wait_s},
            )
        try:
            reply = json.loads(popped[1])
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise SandboxUnavailable("a sandbox worker sent a malformed reply")
        if reply.get("ok") is not True:
            raise reply_error(reply)
        return reply


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The sandbox queue as `pasar sandbox status` reports it."""

    redis: str
    """Where its Redis is (credentials removed), or "embedded"."""
    reachable: bool
    queued: int | None = None
    workers: int | None = None
    failed: int | None = None
    error: str | None = None

    def problem(self) -> str | None:
        """What keeps calls from being served, or None."""
        if self.redis == EMBEDDED:
            return None
        if not self.reachable:
            return f"the sandbox queue's Redis at {self.redis} does not answer ({self.error})"
        if not self.workers:
            return NO_WORKER
        return None


EMBEDDED = "embedded"


def redis_location(redis_url: str) -> str:
    """The URL without its credentials (`redis://user:secret@host` -> `redis://host`)."""
    scheme, separator, rest = redis_url.partition("://")
    if not separator:
        return redis_url.rsplit("@", 1)[-1]
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def queue_status(redis_url: str | None, *, timeout_s: float = 5.0) -> QueueStatus:
    """Jobs waiting, workers registered and failed jobs on the sandbox queue of `redis_url`;
    None: the queue is embedded (`pasar serve` starts its own Redis and worker)."""
    if redis_url is None:
        return QueueStatus(redis=EMBEDDED, reachable=True)
    import redis.exceptions
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    where = redis_location(redis_url)
    client = Redis.from_url(redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        queue = Queue(QUEUE_NAME, connection=client, serializer=JSONSerializer)
        return QueueStatus(
            redis=where,
            reachable=True,
            queued=int(queue.count),
            workers=int(Worker.count(connection=client, queue=queue)),
            failed=int(queue.failed_job_registry.count),
        )
    except (redis.exceptions.RedisError, OSError) as error:
        return QueueStatus(redis=where, reachable=False, error=type(error).__name__)
    finally:
        client.close()
