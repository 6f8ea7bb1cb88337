"""`pasar worker`: runs executions from the rq queue, many at once on one event loop.

One process, one `Services`, one execution runtime (`Runs`, no executors: the jobs are the
runs); `pasar_core.executions.rq_worker.ConcurrentWorker` takes up to `--concurrency` jobs at
once and keeps rq's job states, registries, retries and worker registration. The jobs are
`pasar_core.executions.rq_jobs.run_execution_job`, which run in this runtime. With
`--metrics-port` (`PASAR_METRICS_PORT`) the worker serves its counters (runs finished, tool
calls, model and pool use) at `/metrics` on that port.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from pasar_core.executions.rq_jobs import CURRENT_RUNS
from pasar_core.executions.rq_queue import RQ_QUEUE
from pasar_core.executions.rq_worker import ConcurrentWorker
from pasar_core.executions.runtime import Runs
from pasar_core.observability.tracing import build_tracing
from pasar_core.settings import Settings

from pasar.lifecycle import database_url, running_runs, running_services
from pasar.metrics_listener import Scraped, metrics_listener

log = logging.getLogger("pasar.worker")


def runtime(settings: Settings) -> object:
    """The worker's runtime context: services and `Runs`, current for the jobs it starts."""

    @contextlib.asynccontextmanager
    async def running(_: ConcurrentWorker) -> AsyncIterator[Runs]:
        async with database_url(settings) as url:
            with_url = settings.with_overrides(database_url=url)
            tracing = build_tracing(settings)
            async with (
                running_services(
                    with_url, prepare_database=False, runs_agents=True, tracing=tracing
                ) as services,
                running_runs(services, serve=False) as runs,
            ):
                stack = contextlib.ExitStack()
                if settings.metrics_port is not None:  # this worker's counters, for Prometheus
                    scraped = Scraped(services.metrics.scrape_registry)
                    stack.enter_context(
                        metrics_listener(settings.host, settings.metrics_port, scraped)
                    )
                CURRENT_RUNS.set(runs)  # the jobs' tasks are created in this context
                try:
                    with stack:
                        yield runs
                finally:
                    tracing.flush()

    return running


def work(settings: Settings, *, burst: bool = False, concurrency: int | None = None) -> None:
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    queue = Queue(RQ_QUEUE, connection=redis, serializer=JSONSerializer)
    worker = ConcurrentWorker(
        [queue],
        connection=redis,
        serializer=JSONSerializer,
        max_concurrency=concurrency or settings.worker_concurrency,
        runtime=runtime(settings),  # type: ignore[arg-type]
        grace_s=settings.stale_after_s,  # rq treats its jobs as abandoned as pasar does its runs
        drain_s=settings.drain_s,
        job_monitoring_interval=max(1, int(settings.heartbeat_s)),
    )
    worker.work(burst=burst, logging_level="INFO")
