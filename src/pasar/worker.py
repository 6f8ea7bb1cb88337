"""`pasar worker`: RQ jobs that run executions in separate processes.

rq forks a work horse per job; each job opens its own engine and event loop, runs the
execution with a heartbeat, and listens for cancel notifications while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from pasar_core.executions.events import EventHub
from pasar_core.executions.executors import RQ_QUEUE, beat_while, end_execution
from pasar_core.executions.runner import run_execution
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.services import Services
from pasar_core.settings import Settings

from pasar.lifecycle import database_url, running_services

log = logging.getLogger("pasar.worker")


async def _run(settings: Settings, execution_id: uuid.UUID) -> str | None:
    async with database_url(settings) as url:
        settings = settings.with_overrides(database_url=url)
        async with running_services(settings, run_agents=False, prepare_database=False) as services:
            return await _run_with(services, url, execution_id)


async def _run_with(services: Services, url: str, execution_id: uuid.UUID) -> str | None:
    """Run with a heartbeat, stopping when a cancel notification names this execution."""
    hub = EventHub(url, services.sessionmaker)
    task: asyncio.Task[str | None] = asyncio.create_task(run_execution(services, execution_id))

    def cancel(cancelled: uuid.UUID) -> None:
        if cancelled == execution_id:
            task.cancel()

    hub.on_cancel(cancel)
    await hub.start()
    heartbeat = asyncio.create_task(beat_while(services, execution_id, task))
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"
    finally:
        await heartbeat
        await hub.close()


def run_execution_job(execution_id: str) -> str | None:
    """The RQ job: run one execution to its end."""
    return asyncio.run(_run(Settings.from_env(), uuid.UUID(execution_id)))


def on_job_failure(job: Any, connection: Any, *exc_info: Any) -> None:
    """The job failed or was abandoned (rq calls this): retried runs go back to `queued`,
    the last attempt's run is failed. Either way it is never left `running`."""
    record_lost_run(job)


def record_lost_run(job: Any) -> None:
    retries_left = getattr(job, "retries_left", 0) or 0
    execution_id = uuid.UUID(job.id)

    async def record() -> None:
        settings = Settings.from_env()
        async with running_services(settings, run_agents=False, prepare_database=False) as services:
            if retries_left > 0:
                await end_execution(
                    services, execution_id, "queued", "the worker stopped; retrying",
                    from_statuses=frozenset({"running"}),
                )  # fmt: skip
            else:
                await end_execution(
                    services, execution_id, "failed", "the worker running it stopped"
                )

    log.warning("execution %s: job failed (%d retries left)", execution_id, retries_left)
    asyncio.run(record())


def work(settings: Settings, *, burst: bool = False) -> None:
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    class PasarWorker(Worker):
        def handle_work_horse_killed(
            self, job: Any, retpid: int, ret_val: int, rusage: Any
        ) -> None:
            # rq runs no failure callback when the horse dies: record it here, before rq
            # decides to retry, so the execution never stays `running`.
            record_lost_run(job)

    assert settings.redis_url
    # Import every plugin (and the agent stack) once here: rq forks a work horse per job, and
    # the forks inherit what is imported instead of importing it again for each job.
    build_registry(build_plugin_manager(enabled=settings.enabled_plugins))
    redis = Redis.from_url(settings.redis_url)
    queue = Queue(RQ_QUEUE, connection=redis, serializer=JSONSerializer)
    PasarWorker([queue], connection=redis, serializer=JSONSerializer).work(
        with_scheduler=True, burst=burst, logging_level="INFO"
    )
