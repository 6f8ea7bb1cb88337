"""A concurrent rq worker: up to K jobs at once on one event loop, no fork per job.

rq 3.0 has no async worker; its maintainer's open pull request (rq/rq#2445, `AsyncWorker`)
proposes one. This class takes that shape on rq 3.0's public primitives, so pasar can switch to
rq's own class when it ships: dequeue with BLMOVE into the queue's intermediate list, then
`Queue._fetch_dequeued_job`, `prepare_execution`, `prepare_job_execution`, the job's coroutine
under `asyncio.timeout`, and `_finalize_success` / `_finalize_failure` (rq's success, failure
and retry handling), every blocking Redis call in a thread with its own pipeline. Workers,
executions, the started/failed/finished registries and job states are rq's own, so `rq info`
and rq's tools see this worker, its executions and its jobs.

Concurrency notes (the races rq's worker documents apply here too):
- Heartbeats (worker, executions, jobs) run every `job_monitoring_interval` in a thread; an
  execution's lease in rq's started registry lasts `job_monitoring_interval + grace_s`. A
  worker that stops beating has its jobs treated as abandoned by rq (retried or failed) once
  that lease lapses: keep the event loop responsive (CPU work and sync I/O in threads).
- Maintenance (`clean_registries`) runs in that thread too, so it uses `TimerDeathPenalty`
  (SIGALRM is main-thread only; rq's default would silently skip abandoned-job callbacks).
- The first SIGTERM or SIGINT stops admission and drains through `runtime.drain()` (bounded);
  a second one drains with no bound. Jobs cancelled by a stop request end STOPPED.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from rq import worker_registration
from rq.callbacks import execute_stopped_callback
from rq.command import parse_payload
from rq.executions import Execution
from rq.job import Job, _current_job
from rq.queue import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    StartedJobRegistry,
)
from rq.timeouts import JobTimeoutException, TimerDeathPenalty
from rq.utils import as_text, now
from rq.worker import BaseWorker, WorkerStatus

BUSY_KEY_MARGIN_S = 60
"""How long past a beat a busy worker's registration outlives it (rq's own margin: runs' leases
are the execution heartbeats, not this key)."""

log = logging.getLogger("pasar.worker")


class JobTimedOut(JobTimeoutException):
    """A job ran past its timeout (its own class: `TimerDeathPenalty` patches the base's
    `__init__` process-wide)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


class Drainable(Protocol):
    async def drain(self, bound_s: float | None = None) -> None: ...


Runtime = Callable[["ConcurrentWorker"], AbstractAsyncContextManager[Drainable | None]]


class ConcurrentWorker(BaseWorker):
    """Runs up to `max_concurrency` coroutine jobs of one queue at once (see the module doc).

    `runtime(worker)` is entered on the worker's event loop before the first job and left after
    the last: the context the jobs run in (pasar's execution runtime), whose `drain(bound_s)`
    is called on shutdown."""

    death_penalty_class = TimerDeathPenalty

    def __init__(
        self,
        *args: Any,
        max_concurrency: int = 500,
        runtime: Runtime | None = None,
        grace_s: float = 60,
        drain_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_concurrency = max_concurrency
        self.grace_s = grace_s
        self.drain_s = drain_s
        self._runtime = runtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}  # rq execution id -> task
        self._stop: asyncio.Event | None = None
        self._hurry = False
        self.admitted = 0

    # rq's hooks ---------------------------------------------------------------------------

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        ttl = self.job_monitoring_interval + self.grace_s
        if job.timeout and job.timeout > 0:
            ttl = min(ttl, job.timeout - working_time + self.grace_s)
        return max(1, int(ttl))

    def clean_registries(self) -> None:
        """rq's maintenance with a death penalty that works off the main thread."""
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue
            options: dict[str, Any] = {"name": queue.name, "connection": queue.connection,
                                       "job_class": queue.job_class, "serializer": queue.serializer}  # fmt: skip
            FinishedJobRegistry(**options).cleanup()
            StartedJobRegistry(**options, death_penalty_class=TimerDeathPenalty).cleanup(
                exception_handlers=self._exc_handlers
            )
            FailedJobRegistry(**options).cleanup()
            DeferredJobRegistry(**options).cleanup()
            ReadyJobRegistry(**options).cleanup()
            worker_registration.clean_worker_registry(queue)
            queue.intermediate_queue.cleanup(self, queue)
            queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        self.last_cleaned_at = now()  # type: ignore[assignment]

    def handle_payload(self, message: Any) -> None:
        """Commands from rq's tools (pubsub thread): stop one execution or job of this worker,
        or shut down."""
        payload = parse_payload(message)
        command = payload.get("command")
        if command == "shutdown":
            self._call_soon(self._request_stop)
        elif command == "stop-execution":
            self.request_stop_execution(str(payload.get("execution_id", "")))
        elif command == "stop-job":
            job_id = str(payload.get("job_id", ""))
            for execution_id, execution in list(self.executions.items()):
                if execution.job_id == job_id:
                    self.request_stop_execution(execution_id)

    def request_stop_execution(self, execution_id: str) -> None:
        task = self._tasks.get(execution_id)
        if task is None:
            self.log.warning("Not running execution %s, command ignored.", execution_id)
            return
        self._call_soon(task.cancel)

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        return None  # no work horses: jobs are tasks

    def _call_soon(self, callback: Callable[[], object]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback)

    # the loop -----------------------------------------------------------------------------

    def work(  # type: ignore[override]
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = "%H:%M:%S",
        log_format: str = "%(asctime)s %(message)s",
        max_jobs: int | None = None,
        **_: Any,
    ) -> bool:
        """Same shape as `BaseWorker.work` (so `rq worker -w` could start it)."""
        self.bootstrap(logging_level, date_format, log_format)
        try:
            return asyncio.run(self._main(burst, max_jobs))
        finally:
            self.teardown()  # type: ignore[no-untyped-call]

    def _request_stop(self) -> None:
        assert self._stop is not None
        if self._stop.is_set():
            self._hurry = True
            self.log.warning("Worker %s: second stop request: handing runs back now", self.name)
        self._stop.set()

    async def _main(self, burst: bool, max_jobs: int | None) -> bool:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._request_stop)
        runtime_context = (
            self._runtime(self) if self._runtime is not None else contextlib.nullcontext()
        )
        async with runtime_context as runtime:
            beating = asyncio.create_task(self._heartbeat_loop())
            try:
                await self._admission_loop(burst, max_jobs)
                if self._tasks and runtime is not None:
                    self.set_state(WorkerStatus.BUSY)
                    bound = 0.0 if self._hurry else self.drain_s
                    drained = asyncio.create_task(runtime.drain(bound))
                    # a second signal while draining: hand the rest back at once
                    while not drained.done():
                        await asyncio.wait({drained}, timeout=0.2)
                        if self._hurry and not drained.done():
                            await runtime.drain(0.0)
                    await drained
                if self._tasks:
                    await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            finally:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
        return self.admitted > 0

    async def _admission_loop(self, burst: bool, max_jobs: int | None) -> None:
        import redis.asyncio
        from rq.connections import get_connection_kwargs

        assert self._stop is not None
        queue = self.queues[0]
        aconnection = redis.asyncio.Redis(**get_connection_kwargs(self.connection))
        slots = asyncio.Semaphore(self.max_concurrency)
        try:
            while not self._stop.is_set():
                await slots.acquire()
                raw = await self._pop(aconnection, queue, burst)
                if raw is None:
                    slots.release()
                    if burst:
                        if not self._tasks:
                            return
                        await asyncio.wait(set(self._tasks.values()),
                                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                    continue
                if not await self._admit(queue, as_text(raw), slots):
                    slots.release()
                    continue
                self.admitted += 1
                if max_jobs and self.admitted >= max_jobs:
                    return
        finally:
            await aconnection.aclose()

    async def _pop(self, aconnection: Any, queue: Queue, burst: bool) -> Any:
        assert self._stop is not None
        if burst:
            return await aconnection.lmove(queue.key, queue.intermediate_queue_key)
        pop = asyncio.ensure_future(
            aconnection.blmove(queue.key, queue.intermediate_queue_key, self.dequeue_timeout)
        )
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({pop, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if pop.done():
            return pop.result()
        pop.cancel()
        await asyncio.gather(pop, return_exceptions=True)
        await aconnection.connection_pool.disconnect()  # the cancelled BLMOVE may still answer
        return None

    async def _admit(self, queue: Queue, job_id: str, slots: asyncio.Semaphore) -> bool:
        fetched = await asyncio.to_thread(
            self.queue_class._fetch_dequeued_job, self.connection, queue.key, job_id,
            self.job_class, self.serializer, self.death_penalty_class,
        )  # fmt: skip
        if fetched is None:
            return False
        job, job_queue = fetched
        execution = await asyncio.to_thread(self.prepare_execution, job)
        task = asyncio.create_task(self._run(job, job_queue, execution), name=f"rq-{job.id}")
        self._tasks[execution.id] = task

        def done(_: asyncio.Task[None], key: str = execution.id) -> None:
            self._tasks.pop(key, None)
            slots.release()

        task.add_done_callback(done)
        return True

    async def _run(self, job: Job, queue: Queue, execution: Execution) -> None:
        try:
            await asyncio.to_thread(self.prepare_job_execution, job, True)
            job.started_at = now()
            value = await self._perform(job)
        except asyncio.CancelledError:
            # A stop request (rq's tools): STOPPED, never retried.
            self._stopped_job_id = job.id
            await asyncio.to_thread(self._stopped, job, queue, execution)
        except BaseException:
            await asyncio.to_thread(self._finalize_failure, job, queue, execution, sys.exc_info())
        else:
            await asyncio.to_thread(self._finalize_success, job, queue, execution, value)
        finally:
            if not self.executions:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.set_state, WorkerStatus.IDLE)

    async def _perform(self, job: Job) -> Any:
        timeout = None if job.timeout == -1 else (job.timeout or self.queue_class.DEFAULT_TIMEOUT)
        token = _current_job.set(job)
        try:
            function = job.func
            if not inspect.iscoroutinefunction(function):
                raise TypeError(f"{job.func_name} is not a coroutine function")
            coroutine: Awaitable[Any] = function(*job.args, **job.kwargs)
            async with asyncio.timeout(timeout):
                return await coroutine
        except TimeoutError as error:
            raise JobTimedOut(f"Task exceeded maximum timeout value ({timeout} seconds)") from error
        finally:
            _current_job.reset(token)

    def _stopped(self, job: Job, queue: Queue, execution: Execution) -> None:
        self.handle_execution_ended(job, queue, job.failure_callback_timeout)
        execute_stopped_callback(job, self.death_penalty_class)
        self.handle_job_failure(
            job, queue, started_job_registry=queue.started_job_registry, execution=execution
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._heartbeat_tick)
            except Exception:
                self.log.exception("Worker %s: heartbeat failed", self.name)
            await asyncio.sleep(self.job_monitoring_interval)

    def _heartbeat_tick(self) -> None:
        executions = list(self.executions.values())
        with self.connection.pipeline() as pipeline:
            if not executions:
                self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
                self.heartbeat(pipeline=pipeline)
            else:
                self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
                # rq's own margin for a busy worker's key: a key that lapsed between two late
                # beats (a loaded machine) would come back without its fields (its pid)
                ttl = int(self.job_monitoring_interval + max(self.grace_s, BUSY_KEY_MARGIN_S))
                self.heartbeat(ttl, pipeline=pipeline)
                moment = now()
                for execution in executions:
                    job = execution.job  # seeded by Execution.create: no fetch
                    working = (moment - job.started_at).total_seconds() if job.started_at else 0.0
                    ttl = self.get_heartbeat_ttl(job, working_time=working)
                    execution.heartbeat(job.started_job_registry, ttl, pipeline=pipeline)
                    job.heartbeat(moment, ttl, pipeline=pipeline, xx=True)
            pipeline.execute()
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()  # type: ignore[no-untyped-call]
