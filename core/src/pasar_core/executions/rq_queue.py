"""The `rq` executor's side in the API process: runs go to Redis as rq jobs, and the queue is
kept consistent with the executions table (the table is the truth; Redis can be rebuilt).

Jobs are `pasar_core.executions.rq_jobs.run_execution_job(execution_id)` on the queue
`pasar-executions` (JSON serializer, job id = execution id), run by `pasar worker`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from pasar_core.errors import ServiceUnavailable

log = logging.getLogger("pasar.executions.rq")

RQ_QUEUE = "pasar-executions"
JOB_FUNCTION = "pasar_core.executions.rq_jobs.run_execution_job"
WAITING = frozenset({"queued", "deferred", "scheduled", "started"})
JOB_TIMEOUT_S = 3600


def _waiting(status: Any, position: Any) -> bool:
    """A job that will still run: started, deferred, scheduled, or queued and in the queue."""
    name = status.decode() if isinstance(status, bytes) else status
    if name == "queued":
        return position is not None
    return name in WAITING


class RQSubmitter:
    """Enqueues runs for `pasar worker` processes; re-enqueues the ones Redis lost."""

    name = "rq"

    def __init__(self, redis_url: str, *, retries: int) -> None:
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self._redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(RQ_QUEUE, connection=self._redis, serializer=JSONSerializer)
        self._retries = retries

    def depth(self) -> int:
        """Jobs waiting for a worker (blocking: call it in a thread)."""
        return int(self.queue.count)

    def _enqueue(self, execution_id: uuid.UUID) -> None:
        from rq import Retry

        self.queue.enqueue(
            JOB_FUNCTION,
            str(execution_id),
            job_id=str(execution_id),
            # rq's own account of lost workers (abandoned jobs are retried at once); pasar's
            # table decides whether the run resumes (see executions.recovery).
            retry=Retry(max=max(1, self._retries)),
            job_timeout=JOB_TIMEOUT_S,
            result_ttl=600,
            failure_ttl=86_400,
        )

    async def submit(self, execution_id: uuid.UUID) -> None:
        try:
            await asyncio.to_thread(self._enqueue, execution_id)
        except Exception as error:
            raise ServiceUnavailable(
                f"the run queue (Redis) is unreachable ({type(error).__name__})",
                details={"execution_id": str(execution_id)},
            ) from None

    def _statuses(self, ids: list[uuid.UUID]) -> list[tuple[Any, Any]]:
        """Each job's status and its position in the queue (None: not waiting in it)."""
        with self._redis.pipeline(transaction=False) as pipeline:
            for execution_id in ids:
                pipeline.hget(f"rq:job:{execution_id}", "status")
                pipeline.lpos(self.queue.key, str(execution_id))
            answers = list(pipeline.execute())
        return list(zip(answers[0::2], answers[1::2], strict=True))

    def _replace(self, execution_id: uuid.UUID) -> None:
        from rq.job import Job

        try:
            Job.fetch(str(execution_id), connection=self._redis).delete(remove_from_queue=True)
        except Exception:
            log.debug("no old job for %s", execution_id)
        # A worker that died taking it left its id on rq's intermediate list.
        self._redis.lrem(self.queue.intermediate_queue_key, 0, str(execution_id))
        self._enqueue(execution_id)

    async def ensure_delivered(self, ids: list[uuid.UUID]) -> int:
        """Enqueue the queued runs that have no live job (Redis lost it, rq gave up on it, or a
        worker died between taking it off the queue and registering it as started: rq's
        intermediate queue, which only a worker's maintenance would clean, minutes later).
        The callers pass runs silent for `stale_after_s`; a duplicate job is harmless, since a
        run is held by one lease at a time."""
        if not ids:
            return 0
        found = await asyncio.to_thread(self._statuses, ids)
        missing = [
            execution_id
            for execution_id, (status, position) in zip(ids, found, strict=True)
            if not _waiting(status, position)
        ]
        for execution_id in missing:
            log.warning("execution %s: queued without a job in Redis; enqueued again", execution_id)
            await asyncio.to_thread(self._replace, execution_id)
        return len(missing)

    def _discard(self, ids: list[uuid.UUID]) -> None:
        from rq.job import Job

        for execution_id in ids:
            try:
                Job.fetch(str(execution_id), connection=self._redis).delete(remove_from_queue=True)
            except Exception:
                log.debug("no job for %s", execution_id)

    async def discard(self, ids: list[uuid.UUID]) -> None:
        """Delete the jobs of these runs (their rows are going away: an erased user's)."""
        await asyncio.to_thread(self._discard, ids)

    def _cleanup(self) -> None:
        from rq.registry import StartedJobRegistry
        from rq.serializers import JSONSerializer
        from rq.timeouts import TimerDeathPenalty

        # TimerDeathPenalty: this runs in a thread, where rq's default (SIGALRM) cannot.
        StartedJobRegistry(
            RQ_QUEUE, connection=self._redis, serializer=JSONSerializer,
            death_penalty_class=TimerDeathPenalty,
        ).cleanup()  # fmt: skip

    async def recover_abandoned(self) -> None:
        """rq's handling of jobs whose worker stopped beating: retried (or failed). Jobs a
        worker took off the queue but died before starting are `ensure_delivered`'s."""
        await asyncio.to_thread(self._cleanup)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.to_thread(self._redis.ping))
        except Exception:
            return False

    async def close(self) -> None:
        await asyncio.to_thread(self._redis.close)
