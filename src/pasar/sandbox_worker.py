"""`pasar worker --queue sandbox`: the only processes that talk to Docker.

rq's default worker forks a work horse per job, and a fork would lose the warm containers (and
the attached sockets) with each horse. A sandbox worker is instead one long-lived process that
owns one `SandboxClient` (through `pasar_core.sandbox.jobs.SandboxHost`) and runs as many rq
`SimpleWorker`s as it may keep containers (`PASAR_SANDBOX_MAX_CONTAINERS`), one per thread: each
dequeues with rq's own primitives, performs one job at a time in its thread and records it in
rq's registries, so `rq info` shows them like any worker. Timeouts are the sandbox client's (it
kills the container), so rq's SIGALRM death penalty is not used; signals are handled by the
main thread, which asks every worker to stop after its current job.

At start the host connects to the daemon (if one answers), builds or finds the image, and
removes the containers a dead worker of the same name left behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from pasar_core.sandbox.jobs import CURRENT_HOST, SandboxHost
from pasar_core.sandbox.queue import QUEUE_NAME
from pasar_core.sandbox.settings import SandboxSettings

log = logging.getLogger("pasar.sandbox_worker")

WORKER_TTL_S = 16
"""rq's worker TTL (the dequeue timeout is TTL-15 s)."""
STOP_POLL_S = 1
"""An idle thread blocks this long in each dequeue, then looks whether it was asked to stop
(rq's own dequeue loop retries a timed-out dequeue without looking)."""


def _worker_class() -> type[Any]:
    from rq import SimpleWorker
    from rq.exceptions import StopRequested
    from rq.timeouts import BaseDeathPenalty

    class NoDeathPenalty(BaseDeathPenalty):
        """The sandbox client enforces each call's wall clock itself (and kills its container)."""

        def setup_death_penalty(self) -> None:
            return None

        def cancel_death_penalty(self) -> None:
            return None

    class SandboxWorker(SimpleWorker):
        death_penalty_class = NoDeathPenalty
        host: SandboxHost

        def _install_signal_handlers(self) -> None:
            return None  # the process's main thread owns the signals

        def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
            token = CURRENT_HOST.set(self.host)
            try:
                return bool(super().perform_job(job, queue, execution))
            finally:
                CURRENT_HOST.reset(token)

        def stop_after_current_job(self) -> None:
            self._stop_requested = True

        def dequeue_job_and_maintain_ttl(
            self, timeout: int | None, max_idle_time: int | None = None
        ) -> Any:
            if timeout is None or max_idle_time is not None:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            while not self._stop_requested:
                # An idle time of STOP_POLL_S ends each blocking dequeue with None when empty.
                result = super().dequeue_job_and_maintain_ttl(timeout, STOP_POLL_S)
                if result is not None:
                    return result
            raise StopRequested

    return SandboxWorker


class SandboxWorkerPool:
    """`threads` rq workers on the sandbox queue sharing one host; start, then stop or wait."""

    def __init__(
        self,
        redis_url: str,
        settings: SandboxSettings,
        *,
        host: SandboxHost | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.host = host or SandboxHost(settings)
        self.redis = Redis.from_url(redis_url)
        queue = Queue(QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)
        base = name or f"sandbox.{socket.gethostname()}.{os.getpid()}"
        worker_class = _worker_class()
        self.workers = []
        for index in range(threads or settings.max_containers):
            worker = worker_class(
                [queue],
                connection=self.redis,
                serializer=JSONSerializer,
                name=f"{base}.{index}",
                worker_ttl=WORKER_TTL_S,
            )
            worker.host = self.host
            worker.log_result_lifespan = False
            self.workers.append(worker)
        self._threads: list[threading.Thread] = []

    def start(self, *, burst: bool = False) -> SandboxWorkerPool:
        if not self.host.try_start():
            log.warning("sandbox worker: no Docker daemon yet; calls fail with SANDBOX_UNAVAILABLE")
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.work,
                kwargs={"burst": burst, "logging_level": "WARNING", "with_scheduler": False},
                name=f"pasar-{worker.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Stop after the jobs in progress, then remove every container of this process."""
        for worker in self.workers:
            worker.stop_after_current_job()
        self.wait()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join()
        self.host.close()
        self.redis.close()


def work_sandbox(redis_url: str, settings: SandboxSettings, *, burst: bool = False) -> None:
    """Serve the sandbox queue until SIGTERM or SIGINT (or, with `burst`, until it is empty)."""
    pool = SandboxWorkerPool(redis_url, settings)
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous: list[tuple[int, Callable[..., Any] | int | None]] = [
        (sig, signal.signal(sig, request_stop)) for sig in (signal.SIGTERM, signal.SIGINT)
    ]
    pool.start(burst=burst)
    try:
        while pool.running and not stopping.wait(0.5):
            pass
    finally:
        pool.stop()
        for sig, handler in previous:
            signal.signal(sig, handler)
