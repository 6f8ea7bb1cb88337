"""The process's Prometheus instruments, owned by its `Services` (no global registry).

Every label has a bounded set of values: routes are templates, GraphQL operations are names of
documents that validated, tools are ids; each of these caps the distinct values it keeps
(`BoundedValues`) and reports the rest as `other`, so a caller cannot grow the series.

With several server processes (`pasar serve --workers N`) prometheus-client's multiprocess mode
is on (`PROMETHEUS_MULTIPROC_DIR`, set by `pasar serve`): counters and histograms are summed
over the processes, and each gauge says how it is combined (`multiprocess_mode`).
"""

from __future__ import annotations

import os
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from pasar_core.observability import MULTIPROCESS_ENV

OTHER = "other"
ANONYMOUS = "anonymous"
INVALID = "invalid"
UNAUTHENTICATED = "unauthenticated"
GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
MAX_OPERATIONS = 200
MAX_NEW_OPERATIONS_PER_CALLER = 10
MAX_TOOLS = 500
# Seconds: requests, GraphQL operations and tool calls (model-backed runs take longer).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class BoundedValues:
    """The first `cap` distinct values pass; later new ones are `other`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.cap:
            return OTHER
        self._seen.add(value)
        return value


class AdmittedNames:
    """GraphQL operation names that hold a label: at most `cap` in all, a new one admitted only
    from an authenticated caller, and at most `per_caller` new ones from each; a name already
    admitted labels anyone's operation. So nobody without an account can take a slot, and one
    account cannot take them all (the slots of legitimate clients are taken as they are used)."""

    def __init__(self, cap: int, per_caller: int = MAX_NEW_OPERATIONS_PER_CALLER) -> None:
        self.cap = cap
        self.per_caller = per_caller
        self._admitted: set[str] = set()
        self._by_caller: dict[str, int] = {}

    def __call__(self, name: str, caller: str | None) -> str:
        if name in self._admitted:
            return name
        if caller is None:
            return UNAUTHENTICATED
        admitted = self._by_caller.get(caller, 0)
        if len(self._admitted) >= self.cap or admitted >= self.per_caller:
            return OTHER
        self._by_caller[caller] = admitted + 1
        self._admitted.add(name)
        return name


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.http_requests = Counter(
            "pasar_http_requests", "HTTP requests", ["method", "route", "status"],
            registry=registry,
        )  # fmt: skip
        self.http_errors = Counter(
            "pasar_http_errors", "HTTP responses with a 4xx or 5xx status",
            ["method", "route", "status_class"], registry=registry,
        )  # fmt: skip
        self.http_latency = Histogram(
            "pasar_http_request_seconds", "HTTP request latency, by route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.graphql_operations = Counter(
            "pasar_graphql_operations", "GraphQL operations by name, type and outcome",
            ["operation", "type", "outcome"], registry=registry,
        )  # fmt: skip
        self.graphql_latency = Histogram(
            "pasar_graphql_operation_seconds", "GraphQL operation latency, by operation name",
            ["operation", "type"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.tool_calls = Counter(
            "pasar_tool_calls", "Tool calls made by runs, by tool and outcome",
            ["tool", "outcome"], registry=registry,
        )  # fmt: skip
        self.tool_latency = Histogram(
            "pasar_tool_call_seconds", "Tool call latency", ["tool"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.runs_finished = Counter(
            "pasar_runs_finished", "Run attempts this process ended, by the status they left",
            ["status"], registry=registry,
        )  # fmt: skip
        self.logins = Counter(
            "pasar_logins", "Password log-ins by outcome (success, failure, throttled)",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.token_refreshes = Counter(
            "pasar_token_refreshes",
            "Token refreshes by provider (pasar: session refresh tokens) and outcome",
            ["provider", "outcome"], registry=registry,
        )  # fmt: skip
        self.executions = Gauge(
            "pasar_executions", "Executions by status (all processes, from the database)",
            ["status"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "pasar_queue_depth",
            "Work waiting: RQ queues when Redis is configured, else queued executions",
            ["queue"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.pool_connections = Gauge(
            "pasar_db_pool_connections",
            "Database pool connections (state: checked_out, size, overflow)",
            ["pool", "state"], multiprocess_mode="livesum", registry=registry,
        )  # fmt: skip
        self.pool_waits = Counter(
            "pasar_db_pool_waits", "Checkouts that found every connection in use and waited",
            ["pool"], registry=registry,
        )  # fmt: skip
        self.pool_timeouts = Counter(
            "pasar_db_pool_timeouts", "Checkouts refused after waiting the pool timeout",
            ["pool"], registry=registry,
        )  # fmt: skip
        self.inline_running = Gauge(
            "pasar_inline_executions_in_process", "Runs held by this process's inline executor",
            multiprocess_mode="livesum", registry=registry,
        )  # fmt: skip
        self.tools = Gauge(
            "pasar_tools", "Installed tools", multiprocess_mode="mostrecent", registry=registry
        )
        self.operation_names = AdmittedNames(MAX_OPERATIONS)
        self.tool_ids = BoundedValues(MAX_TOOLS)

    def scrape_registry(self) -> CollectorRegistry:
        """This process's registry, or every process's series in multiprocess mode."""
        if not os.environ.get(MULTIPROCESS_ENV):
            return self.registry
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return combined

    def process_stopped(self) -> None:
        """In multiprocess mode, drop this process's live gauges (its counters stay summed)."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def operation_label(self, name: str | None, *, valid: bool, caller: str | None) -> str:
        """A GraphQL operation's label: its name only when its document validated and the
        name is admitted (`AdmittedNames`; `caller`: the authenticated caller's id, if any)."""
        if not valid:
            return INVALID
        if name is None:
            return ANONYMOUS
        if not GRAPHQL_NAME.fullmatch(name):
            return INVALID
        return self.operation_names(name, caller)

    def tool_call(self, tool_id: str, *, ok: bool, seconds: float) -> None:
        tool = self.tool_ids(tool_id)
        self.tool_calls.labels(tool=tool, outcome="success" if ok else "error").inc()
        self.tool_latency.labels(tool=tool).observe(seconds)
