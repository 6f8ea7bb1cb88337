"""The request and the execution a line of log belongs to (context variables: each request's
task and each run's task sets its own, and the tasks they start inherit them)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pasar_request_id", default=None
)
EXECUTION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pasar_execution_id", default=None
)


@contextlib.contextmanager
def bound(variable: contextvars.ContextVar[str | None], value: str) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)
