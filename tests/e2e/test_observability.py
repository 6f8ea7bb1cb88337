"""Request ids, structured logs and traces, through the whole app.

Spans go to the OpenTelemetry SDK's in-memory exporter (or, once, over OTLP/HTTP to a receiver
on 127.0.0.1); logs are read from the handler the server processes install, writing JSON."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pasar_core.observability.logs import QUIET_LOGGERS, configure_logging
from pasar_core.observability.tracing import Tracing
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, create_agent, scripted

FRESH_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """What the server's processes log (`configure_logging`), as JSON lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    handler = configure_logging("json", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_request_id_is_echoed_or_made(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "gw-7f3a:01"})
    assert kept.headers["x-request-id"] == "gw-7f3a:01"
    made = client.get("/healthz")
    assert FRESH_ID.fullmatch(made.headers["x-request-id"])
    assert client.get("/healthz").headers["x-request-id"] != made.headers["x-request-id"]


@pytest.mark.parametrize(
    "hostile",
    ["x" * 65, "two words", "line\tbreak", "caf\xe9", "", '{"level":"ERROR"}\x7f'],
)
def test_an_unfit_request_id_is_replaced(client: TestClient, hostile: str) -> None:
    response = client.get("/healthz", headers=[(b"x-request-id", hostile.encode("latin-1"))])
    echoed = response.headers["x-request-id"]
    assert FRESH_ID.fullmatch(echoed)
    assert echoed != hostile


def failing_run(client: TestClient, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    """A run whose model fails: the runner logs one warning, inside the request (wait)."""
    config = {"model": "scripted", "model_options": {"script": [{"content": "x"}], "fail": True}}
    agent_id = create_agent(client, headers, [], config)
    run: dict[str, Any] = client.post(
        f"/agents/{agent_id}/execute", json={"input": "x", "parameters": {"wait": True}},
        headers={**headers, "X-Request-ID": request_id},
    ).json()  # fmt: skip
    assert run["status"] == "failed"
    return run


def test_log_lines_carry_the_request_and_execution_ids(
    client: TestClient, make_user, json_logs: io.StringIO
) -> None:
    run = failing_run(client, make_user(), "req-run")
    logged = lines(json_logs)
    (failed,) = [line for line in logged if line.get("execution_id") == run["execution_id"]]
    assert failed["request_id"] == "req-run"  # the inline run inherits its request's context
    assert failed["logger"] == "pasar.runner"
    assert failed["level"] == "WARNING"
    assert run["execution_id"] in failed["message"]
    assert {"time", "level", "logger", "message"} <= set(failed)
    assert "trace_id" not in failed  # tracing is off


def test_secrets_stay_out_of_json_logs(client: TestClient, json_logs: io.StringIO) -> None:
    email = "secretive@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    pair = client.post("/auth/token", json=credentials).json()
    client.post("/auth/token", json={"email": email, "password": TEST_PASSWORD + "-wrong"})
    client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})  # reused
    client.post("/auth/token", content=b'{"password": "' + TEST_PASSWORD.encode() + b'"',
                headers={"Content-Type": "application/json"})  # fmt: skip
    client.get("/auth/google/callback?code=4/secret-code&state=s3cret-state")
    client.get("/agents", headers={"Authorization": "Bearer " + pair["access_token"]})  # ended
    again = client.post("/auth/token", json=credentials).json()["access_token"]
    failing_run(client, {"Authorization": f"Bearer {again}"}, "req-secrets")
    logged = lines(json_logs)
    assert [line for line in logged if line.get("request_id") == "req-secrets"]
    assert not [line for line in logged if line["logger"].startswith(QUIET_LOGGERS)]
    output = json_logs.getvalue()
    for secret in (TEST_PASSWORD, pair["refresh_token"], pair["access_token"], "secret-code",
                   "s3cret-state"):  # fmt: skip
        assert secret not in output


def in_memory_tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def test_spans_for_requests_graphql_runs_model_tool_calls_and_sql(
    pasar_settings: Settings, json_logs: io.StringIO
) -> None:
    tracing, exporter = in_memory_tracing()
    with TestClient(create_app(pasar_settings, tracing=tracing)) as client:
        credentials = {"email": "traced@example.com", "password": TEST_PASSWORD}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        config = scripted(call("txt:write", path="t.txt", content="x"))
        agent_id = create_agent(client, headers, ["txt:write"], config)
        exporter.clear()
        run = client.post(
            f"/agents/{agent_id}/execute",
            json={"input": "go", "parameters": {"wait": True}}, headers=headers,
        ).json()  # fmt: skip
        assert run["status"] == "succeeded", run
        client.post("/graphql", json={"query": "query Health { me { id } }"}, headers=headers)
        client.get(f"/nowhere/{'x' * 40}")
        spans = exporter.get_finished_spans()
    (request,) = named(spans, "POST /agents/{agent_id}/execute")
    (run_span,) = named(spans, "pasar.run")
    models = named(spans, "pasar.model")
    (tool,) = named(spans, "pasar.tool")
    trace_id = request.context.trace_id
    assert run_span.context.trace_id == trace_id  # the inline run is part of its request
    assert run_span.attributes is not None
    assert run_span.attributes["pasar.execution.id"] == run["execution_id"]
    assert run_span.attributes["pasar.execution.status"] == "succeeded"
    assert len(models) == 2  # the tool call, then "done"
    assert {m.attributes["pasar.model"] for m in models if m.attributes} == {"scripted"}
    assert tool.attributes is not None
    assert tool.attributes["pasar.tool.id"] == "txt:write"
    assert tool.parent is not None
    assert tool.context.trace_id == trace_id
    sql = [s for s in spans if s.attributes and s.attributes.get("db.system") == "postgresql"]
    assert any(s.context.trace_id == trace_id for s in sql), [s.name for s in spans]
    (operation,) = named(spans, "graphql query Health")
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Health"
    assert named(spans, "GET unmatched")  # the raw path never names a span
    assert not [s for s in spans if "nowhere" in s.name]


def test_hot_reads_have_sql_spans_with_placeholders_never_values(pasar_settings: Settings) -> None:
    """The reads that skip the ORM (their own asyncpg pool) are traced too."""
    tracing, exporter = in_memory_tracing()
    with TestClient(create_app(pasar_settings, tracing=tracing)) as client:
        credentials = {"email": "hot-reads@example.com", "password": TEST_PASSWORD}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        agent_id = create_agent(client, headers, [], scripted())
        exporter.clear()
        assert client.get(f"/agents/{agent_id}", headers=headers).status_code == 200
        spans = exporter.get_finished_spans()
    (request,) = named(spans, "GET /agents/{agent_id}")
    (read,) = named(spans, "SELECT agents")
    assert read.context.trace_id == request.context.trace_id
    assert read.attributes is not None
    assert read.attributes["db.system"] == "postgresql"
    assert read.attributes["db.replica"] is False
    statement = str(read.attributes["db.statement"])
    assert "$1" in statement
    assert agent_id not in span_text(read)


SECRETS = ("c0de-s3cret", "st4te-s3cret", "t0ken-s3cret")


def span_text(span: ReadableSpan) -> str:
    return f"{span.name} {dict(span.attributes or {})} {[e.attributes for e in span.events]}"


def test_query_strings_are_redacted_in_spans(pasar_settings: Settings) -> None:
    tracing, exporter = in_memory_tracing()
    with TestClient(create_app(pasar_settings, tracing=tracing)) as client:
        client.get(f"/auth/google/callback?code={SECRETS[0]}&state={SECRETS[1]}")
        client.get(f"/healthz?token={SECRETS[2]}")
        spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.name.startswith("GET ")]
    assert len(requests) == 2, [s.name for s in spans]
    for span in spans:
        assert not any(secret in span_text(span) for secret in SECRETS), span_text(span)
    (callback,) = named(spans, "GET /auth/{provider}/callback")
    assert callback.attributes is not None
    targets = {str(value) for key, value in callback.attributes.items() if "url" in key
               or "target" in key or "query" in key}  # fmt: skip
    assert any("code=REDACTED&state=REDACTED" in value for value in targets), targets


def test_the_app_still_reads_the_query_it_was_sent() -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["query_string"]})

    tracing, exporter = in_memory_tracing()
    client = TestClient(tracing.wrap_asgi(echo))
    response = client.get(f"/x?code={SECRETS[0]}&plain")
    assert response.content == f"code={SECRETS[0]}&plain".encode()
    (span,) = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert SECRETS[0] not in span_text(span)
    assert "code=REDACTED&plain=REDACTED" in span_text(span)


def test_the_trace_id_is_in_the_log_lines(pasar_settings: Settings, json_logs: io.StringIO) -> None:
    tracing, exporter = in_memory_tracing()
    with TestClient(create_app(pasar_settings, tracing=tracing)) as client:
        credentials = {"email": "logged@example.com", "password": TEST_PASSWORD}
        client.post("/auth/signup", json=credentials)
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        run = failing_run(client, {"Authorization": f"Bearer {token}"}, "traced-run")
        spans = exporter.get_finished_spans()
    (run_span,) = named(spans, "pasar.run")
    (line,) = [line for line in lines(json_logs) if line.get("request_id") == "traced-run"]
    assert line["execution_id"] == run["execution_id"]
    assert line["trace_id"] == format(run_span.context.trace_id, "032x")
    assert line["span_id"] == format(run_span.context.span_id, "016x")


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_over_otlp_http(pasar_settings: Settings) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        settings = pasar_settings.with_overrides(otlp_endpoint=endpoint, service_name="pasar-t")
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            client.post("/graphql", json={"query": "{ __typename }"})
        # the app's end flushed its spans
    finally:
        server.shutdown()
        server.server_close()
    assert received
    names, services = set(), set()
    for path, content_type, body in received:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            services |= {a.value.string_value for a in resource.resource.attributes
                         if a.key == "service.name"}  # fmt: skip
            names |= {span.name for scope in resource.scope_spans for span in scope.spans}
    assert {"GET /healthz", "POST /graphql", "graphql query anonymous"} <= names  # the app's own
    assert services == {"pasar-t"}


def test_without_tracing_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import sys\n"
        "from pasar_core.settings import Settings\n"
        "from pasar.app import create_app\n"
        "create_app(Settings(database_url='postgresql://127.0.0.1:1/none'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120)  # fmt: skip
    assert done.stdout.strip() == "[]"
