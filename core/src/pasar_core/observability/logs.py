"""Log lines as JSON objects (one a line, for central log stores) or as readable text.

Every line carries the request id, execution id and trace id of the context it was written in
(`pasar_core.observability.context`, the current OpenTelemetry span). `PASAR_LOG_FORMAT` picks
`json` or `text`; `auto` writes text to a terminal and JSON otherwise. What reaches a line is
the message pasar wrote: secrets are kept out where they are logged (query strings of access
logs are redacted by `pasar.access_log`), and nothing here adds request bodies or headers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

from pasar_core.observability.context import EXECUTION_ID, REQUEST_ID
from pasar_core.observability.tracing import current_span

CONTEXT_FIELDS = ("request_id", "execution_id", "trace_id", "span_id")
# At INFO these name every URL requested (query strings included) or, for SQLAlchemy, every
# statement with its parameters (password hashes, sealed tokens): WARNING and up only.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3", "sqlalchemy", "botocore", "openai",
                 "anthropic")  # fmt: skip
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


class ContextFilter(logging.Filter):
    """Adds the request, execution and trace ids of the current context to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.execution_id = EXECUTION_ID.get()
        span = current_span()
        if span is None:
            record.trace_id = record.span_id = None
        else:
            context = span.get_span_context()
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS[:3]
               if getattr(record, name, None) is not None]  # fmt: skip
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def formatter_for(log_format: str, stream: IO[str]) -> logging.Formatter:
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return JsonFormatter() if log_format == "json" else TextFormatter()


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(log_format, stream))
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(
    log_format: str, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """The process's log output: pasar's and the libraries' lines, through one handler on the
    root logger (called once by each server or worker process, not by `create_app`); the
    `QUIET_LOGGERS` stay at WARNING."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "pasar", False):
            root.removeHandler(handler)
    handler = log_handler(log_format, stream)
    handler.pasar = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler
