"""The rq job of an execution, run by `pasar worker` (`executions.rq_worker.ConcurrentWorker`).

A coroutine function, so a concurrent worker runs many at once on its event loop (as rq's
proposed `AsyncWorker` would). It runs in the worker's own execution runtime, which the worker
makes current for the jobs it starts.
"""

from __future__ import annotations

import contextvars
import uuid
from typing import TYPE_CHECKING, Any

from pasar_core.executions.status import ExecutionStatus

if TYPE_CHECKING:
    from pasar_core.executions.runtime import Runs

HANDOFF_RETRIES = 1000
CURRENT_RUNS: contextvars.ContextVar[Runs] = contextvars.ContextVar("pasar_worker_runs")


async def run_execution_job(execution_id: str) -> Any:
    """Run one execution to its end. A run handed back (the worker is draining) returns an rq
    `Retry`, so rq queues the job again for another worker, which resumes the run."""
    from rq import Retry

    runs = CURRENT_RUNS.get(None)
    if runs is None:
        raise RuntimeError("run_execution_job runs in `pasar worker` (a concurrent worker)")
    status = await runs.run(uuid.UUID(execution_id))
    if status == ExecutionStatus.QUEUED.value:
        return Retry(max=HANDOFF_RETRIES)
    return status
