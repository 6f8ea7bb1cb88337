"""An OpenAI SDK client chats with a pasar agent: the official `openai` package against the app
served on a loopback port (with its lifespan), streaming and not, with the scripted model."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, scripted
from tests.support.hostile_json import HOSTILE_BODIES
from tests.support.servers import serve_in_thread
from tests.support.teams import in_new_team, join


@dataclass(frozen=True, slots=True)
class Served:
    base: str
    key: str
    headers: dict[str, str]

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=self.key, **options)

    def agent(self, *replies: dict[str, Any], name: str = "helper", **config: Any) -> str:
        body = {"name": name, "tools": ["txt:write", "txt:read"],
                "config": {"model": "scripted", "model_options": {"script": list(replies)},
                           **config}}  # fmt: skip
        response = httpx.post(f"{self.base}/agents", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["agent_id"])


def said(text: str) -> Any:
    """One user message, as an OpenAI client sends it."""
    return [{"role": "user", "content": text}]


def sign_up(base: str, email: str) -> Served:
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
    token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{base}/api-keys", json={"name": "sdk"}, headers=headers)
    assert created.status_code == 201, created.text
    return Served(base, created.json()["key"], headers)


def serve(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings), lifespan="on") as base:
        yield base


@pytest.fixture
def base(pasar_settings: Settings) -> Iterator[str]:
    yield from serve(pasar_settings.with_overrides(max_body_bytes=64 * 1024))


@pytest.fixture
def served(base: str) -> Served:
    return sign_up(base, "sdk@example.com")


def test_models_are_the_agents_the_caller_may_run(served: Served, base: str) -> None:
    mine = served.agent({"content": "hi"}, name="helper")
    other = sign_up(base, "other@example.com")
    other.agent({"content": "not yours"}, name="theirs")
    models = served.client().models.list()
    assert [(m.id, m.object, m.owned_by) for m in models.data] == [(mine, "model", "pasar")]
    assert models.data[0].model_extra == {"name": "helper"}


def test_models_are_bounded_to_the_newest_agents(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pasar.openai_api.routes.MODELS_LIMIT", 2)
    made = [served.agent({"content": "hi"}, name=f"agent {index}") for index in range(3)]
    listed = [model.id for model in served.client().models.list().data]
    assert listed == [made[2], made[1]]  # the two made last, newest first; the oldest is left out
    # A model left out of the list is still an agent the caller may run by its id.
    answer = served.client().chat.completions.create(model=made[0], messages=said("hi"))
    assert answer.choices[0].message.content == "hi"


def test_a_chat_completion_runs_the_agent_through_its_tools(served: Served) -> None:
    agent_id = served.agent(
        call("txt:write", path="note.txt", content="from the SDK"),
        call("txt:read", path="note.txt"),
        {"content": "I wrote and read your note."},
    )
    answer = served.client().chat.completions.create(model=agent_id, messages=said("write a note"))
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "I wrote and read your note."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == agent_id
    execution_id = (answer.model_extra or {})["pasar"]["execution_id"]
    assert answer.id == f"chatcmpl-{uuid.UUID(execution_id).hex}"
    # The same execution pasar's API shows: every step recorded as for any run.
    run = httpx.get(f"{served.base}/executions/{execution_id}", headers=served.headers).json()
    assert run["status"] == "succeeded"
    assert [s["type"] for s in run["steps"] if s["type"] == "tool_result"] == ["tool_result"] * 2
    assert run["input"] == "write a note"


def test_a_streamed_completion_arrives_as_chunks_and_ends(served: Served) -> None:
    agent_id = served.agent(
        call("txt:write", path="s.txt", content="first a tool"),
        {"content": "streamed answer, word by word"},
        name="streamer",
    )
    stream = served.client().chat.completions.create(
        model="streamer", messages=said("hello"), stream=True
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "streamed answer, word by word"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {"streamer"}
    assert agent_id  # addressed by its name


def test_thread_memory_through_the_thread_id_field(served: Served) -> None:
    agent_id = served.agent({"echo": True}, memory="thread")
    client = served.client()
    thread = {"thread_id": "conversation-1"}
    client.chat.completions.create(
        model=agent_id, messages=said("my name is Ada"),
        extra_body=thread,
    )  # fmt: skip
    second = client.chat.completions.create(
        model=agent_id, messages=said("who am I?"), extra_body=thread
    )
    echoed = second.choices[0].message.content or ""
    assert "my name is Ada" in echoed  # the thread's earlier turn reached the model
    assert (second.model_extra or {})["pasar"]["thread_id"] == "conversation-1"
    alone = client.chat.completions.create(model=agent_id, messages=said("who am I?"))
    assert "Ada" not in (alone.choices[0].message.content or "")


def test_a_run_waiting_for_approval_is_a_clear_error_not_retried(served: Served) -> None:
    agent_id = served.agent(
        call("txt:write", path="x.txt", content="y"), {"content": "done"},
        approval={"require_for": ["write"]},
    )  # fmt: skip
    client = served.client(max_retries=3)
    with pytest.raises(openai.ConflictError) as raised:
        client.chat.completions.create(model=agent_id, messages=said("go"))
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "run_paused"
    assert raised.value.response.headers["x-should-retry"] == "false"
    runs = httpx.get(f"{served.base}/agents/{agent_id}/executions", headers=served.headers)
    [run] = runs.json()["executions"]  # one run
    assert run["status"] == "awaiting_approval"
    # The execution to continue is named in the error object itself, not only in its message.
    assert error["pasar"] == {"execution_id": run["execution_id"], "status": "awaiting_approval"}
    with pytest.raises(openai.APIError, match="waiting for approval") as streamed:
        list(client.chat.completions.create(
            model=agent_id, messages=said("go"), stream=True
        ))  # fmt: skip
    assert isinstance(streamed.value.body, dict)
    assert streamed.value.body["pasar"]["status"] == "awaiting_approval"


def test_a_failing_model_is_an_error_in_openais_shape(served: Served) -> None:
    agent_id = served.agent({"content": "never"}, name="broken")
    httpx.put(
        f"{served.base}/agents/{agent_id}",
        headers=served.headers,
        json={
            "config": {
                "model": "scripted",
                "model_options": {"script": [{"content": "x"}], "fail": True},
            }
        },
    )
    with pytest.raises(openai.InternalServerError) as raised:
        served.client(max_retries=0).chat.completions.create(model=agent_id, messages=said("go"))
    assert raised.value.status_code == 502
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "run_failed"
    assert raised.value.body["type"] == "server_error"
    assert raised.value.body["pasar"]["status"] == "failed"


def test_bad_input_is_a_clear_4xx(served: Served) -> None:
    agent_id = served.agent({"content": "hi"})
    client = served.client(max_retries=0)
    user = said("hi")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-agent", messages=user)
    assert isinstance(unknown.value.body, dict)
    assert unknown.value.body["code"] == "model_not_found"
    assert unknown.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=str(uuid.uuid4()), messages=user)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        ({"messages": user, "n": 2}, "n"),
        ({"messages": user, "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"messages": user, "extra_body": {"thread_id": "t"}}, ""),  # needs memory: thread
    ]
    for case, param in cases:
        extra_body = case.pop("extra_body", None)
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model=agent_id, extra_body=extra_body, **case)
        assert isinstance(bad.value.body, dict)
        assert bad.value.body["type"] == "invalid_request_error", case
        if param:
            assert bad.value.body["param"] == param, (case, bad.value.body)
        assert bad.value.body["message"]


def test_credentials_size_and_content_type_are_refused_in_openais_shape(
    served: Served, base: str
) -> None:
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        openai.OpenAI(base_url=f"{base}/v1", api_key="psr_not-a-key").models.list()
    assert isinstance(unauthenticated.value.body, dict)
    assert unauthenticated.value.body["type"] == "authentication_error"
    agent_id = served.agent({"content": "hi"})
    huge = said("x" * (70 * 1024))
    with pytest.raises(openai.APIStatusError) as too_big:
        served.client(max_retries=0).chat.completions.create(model=agent_id, messages=huge)
    assert too_big.value.status_code == 413
    assert isinstance(too_big.value.body, dict)
    assert too_big.value.body["code"] == "payload_too_large"
    auth = {"Authorization": f"Bearer {served.key}"}
    form = httpx.post(f"{base}/v1/chat/completions", content=b"model=x", headers=auth)
    assert form.status_code == 415
    assert form.json()["error"]["type"] == "invalid_request_error"
    broken = httpx.post(f"{base}/v1/chat/completions", content=b"{", headers=auth | {
        "Content-Type": "application/json"})  # fmt: skip
    assert broken.status_code == 400
    assert set(broken.json()["error"]) == {"message", "type", "param", "code"}


def test_idempotency_key_replays_and_is_refused_with_stream(served: Served) -> None:
    agent_id = served.agent({"content": "once"})
    client = served.client(max_retries=0)
    key = {"Idempotency-Key": "chat-1"}
    user = said("hi")
    first = client.chat.completions.create(model=agent_id, messages=user, extra_headers=key)
    again = client.with_raw_response.chat.completions.create(
        model=agent_id, messages=user, extra_headers=key
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parse().id == first.id
    with pytest.raises(openai.BadRequestError, match="cannot be replayed"):
        client.chat.completions.create(
            model=agent_id, messages=user, stream=True, extra_headers={"Idempotency-Key": "s"}
        )


def test_runs_count_against_the_run_rate_limit(pasar_settings: Settings) -> None:
    for base in serve(pasar_settings.with_overrides(rate_limit_runs="1/60")):
        served = sign_up(base, "limited@example.com")
        agent_id = served.agent({"content": "hi"})
        client = served.client(max_retries=0)
        user = said("hi")
        client.chat.completions.create(model=agent_id, messages=user)
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model=agent_id, messages=user)
        assert limited.value.response.headers["Retry-After"]
        assert isinstance(limited.value.body, dict)
        assert limited.value.body["type"] == "rate_limit_error"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]) | JSON,
                           "content": st.text(max_size=20) | JSON}),
    min_size=1, max_size=3,
) | JSON  # fmt: skip


def chat_bodies(model: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies whose model is often the caller's real agent (by id or by name), so most reach
    past the model lookup to the checks of the rest."""
    spoken = st.lists(st.fixed_dictionaries({"role": st.just("user"),
                                             "content": st.text(min_size=1, max_size=20)}),
                      min_size=1, max_size=2)  # fmt: skip
    return st.fixed_dictionaries(
        {"model": st.sampled_from([model, "helper"]) | JSON | st.just("no-such-agent"),
         "messages": spoken | MESSAGES},
        optional={"stream": JSON, "thread_id": JSON, "n": JSON, "tools": JSON,
                  "response_format": JSON, "stream_options": JSON},
    )  # fmt: skip


def test_hostile_and_generated_bodies_are_answered_or_4xx_in_openais_shape(
    client: TestClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    headers = make_user()
    body = {"name": "helper", "tools": [], "config": scripted()}
    agent_id = client.post("/agents", json=body, headers=headers).json()["agent_id"]
    caplog.set_level(logging.INFO)
    answered = 0

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(body=HOSTILE_BODIES.map(lambda b: (b.content, b.content_type)) | chat_bodies(
        agent_id).map(lambda b: (json.dumps(b).encode(), "application/json")))  # fmt: skip
    def attack(body: tuple[bytes, str | None]) -> None:
        nonlocal answered
        caplog.clear()
        content, content_type = body
        sent = headers | ({"Content-Type": content_type} if content_type else {})
        response = client.post("/v1/chat/completions", content=content, headers=sent)
        if response.status_code == 200:  # a run: its answer, whole or streamed
            answered += 1
            assert "done" in response.text
            return
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"]
        assert len(caplog.records) <= 1, [r.getMessage() for r in caplog.records]
        assert not any(record.exc_info for record in caplog.records)

    attack()
    assert answered > 0  # bodies reached the run, past the model lookup
    assert [a["id"] for a in client.get("/agents", headers=headers).json()["agents"]] == [agent_id]


def slow(delay_ms: int, answer: str = "slow answer") -> dict[str, Any]:
    """An agent config whose model waits `delay_ms` before each reply."""
    return {"model": "scripted",
            "model_options": {"script": [{"content": answer}], "delay_ms": delay_ms}}  # fmt: skip


def test_defaults_a_client_sends_are_accepted_and_the_rest_refused(served: Served) -> None:
    agent_id = served.agent({"content": "fine"})
    auth = {"Authorization": f"Bearer {served.key}"}
    url = f"{served.base}/v1/chat/completions"
    base_body: dict[str, Any] = {"model": agent_id, "messages": said("hi")}
    accepted: list[dict[str, Any]] = [{"stream": None}, {"response_format": {"type": "text"}}, {"n": 1.0},
                                      {"n": 1}, {"n": None}]  # fmt: skip
    for extra in accepted:
        answered = httpx.post(url, json=base_body | extra, headers=auth, timeout=60)
        assert answered.status_code == 200, (extra, answered.text)
        assert answered.json()["choices"][0]["message"]["content"] == "fine", extra
    refused_bodies: list[tuple[dict[str, Any], str]] = [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 1.5}, "n"), ({"n": 2}, "n"), ({"n": True}, "n"), ({"stream": "yes"}, "stream"),
    ]  # fmt: skip
    for extra, param in refused_bodies:
        refused = httpx.post(url, json=base_body | extra, headers=auth, timeout=60)
        assert refused.status_code == 400, (extra, refused.text)
        assert refused.json()["error"]["param"] == param, (extra, refused.json())


def test_every_answer_under_v1_has_openais_error_shape(served: Served, base: str) -> None:
    auth = {"Authorization": f"Bearer {served.key}"}
    for method, path, status in (("GET", "/v1/chat/completions", 405),
                                 ("DELETE", "/v1/models", 405),
                                 ("GET", "/v1/nope", 404), ("POST", "/v1", 404),
                                 ("GET", "/v1/models/x/y", 404)):  # fmt: skip
        response = httpx.request(method, f"{base}{path}", headers=auth)
        assert response.status_code == status, (method, path, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, (method, path, error)
        assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
        assert error["code"] == ("not_found" if status == 404 else "method_not_allowed")
        if status == 405:
            assert response.headers["Allow"]
    # the rest of the API keeps pasar's own shape
    rest = httpx.get(f"{base}/nope", headers=auth).json()["error"]
    assert rest["code"] == "NOT_FOUND"


def test_a_failure_outside_a_handler_under_v1_is_in_openais_shape() -> None:
    """What the app's exception handlers answer under /v1 when a typed error (every database
    connection busy, raised by a guard before any handler) or a bug gets there."""
    from pasar_core.storage.db import busy
    from starlette.requests import Request

    from pasar.openai_api.errors import app_error

    request = Request({"type": "http", "method": "GET", "path": "/v1/models", "headers": []})
    busy_answer = asyncio.run(app_error(request, busy()))
    assert busy_answer.status_code == 503
    assert busy_answer.headers["Retry-After"]
    assert json.loads(bytes(busy_answer.body))["error"]["type"] == "server_error"
    bug = asyncio.run(app_error(request, RuntimeError("secret detail")))
    assert bug.status_code == 500
    assert json.loads(bytes(bug.body)) == {"error": {
        "message": "unexpected server error", "type": "server_error", "param": None,
        "code": "internal"}}  # fmt: skip


@pytest.fixture
def quick(pasar_settings: Settings) -> Iterator[str]:
    """A server that pings idle streams every 50 ms and follows an OpenAI run for 1 s."""
    yield from serve(pasar_settings.with_overrides(sse_ping_s=0.05, openai_wait_s=1.0))


def test_a_silent_stream_is_pinged_and_still_parses(quick: str) -> None:
    served = sign_up(quick, "pinged@example.com")
    agent_id = served.agent(name="slow", **slow(400))
    body = {"model": agent_id, "messages": said("hi"), "stream": True}
    auth = {"Authorization": f"Bearer {served.key}"}
    with httpx.stream("POST", f"{quick}/v1/chat/completions", json=body, headers=auth,
                      timeout=60) as response:  # fmt: skip
        lines = [line for line in response.iter_lines() if line]
    assert ": ping" in lines  # the model took 8 intervals to answer
    assert lines[-1] == "data: [DONE]"
    assert "slow answer" in "".join(lines)
    stream = served.client().chat.completions.create(model=agent_id, messages=said("hi"),
                                                     stream=True)  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "slow answer"
    # The run's own event stream pings with the same setting.
    run = httpx.post(f"{quick}/agents/{agent_id}/execute",
                     json={"input": "hi", "parameters": {"wait": False}},
                     headers=served.headers).json()  # fmt: skip
    with httpx.stream("GET", f"{quick}/executions/{run['execution_id']}/events",
                      headers=served.headers, timeout=60) as events:  # fmt: skip
        event_lines = list(events.iter_lines())
    assert ": ping" in event_lines
    assert any(line.startswith("event: status") for line in event_lines)


def test_a_stream_and_a_wait_are_bounded_and_end_with_run_still_running(quick: str) -> None:
    served = sign_up(quick, "bounded@example.com")
    agent_id = served.agent(name="slower", **slow(60_000))
    client = served.client(max_retries=0)
    with pytest.raises(openai.APIError) as streamed:
        list(client.chat.completions.create(model=agent_id, messages=said("hi"), stream=True))
    error = streamed.value.body
    assert isinstance(error, dict)
    assert error["code"] == "run_still_running"
    assert "after 1 s" in error["message"]
    # not finished: running, or still queued when a loaded machine has not started it yet
    assert error["pasar"]["status"] in ("queued", "running")
    with pytest.raises(openai.APIStatusError) as waited:
        client.chat.completions.create(model=agent_id, messages=said("hi"))
    assert waited.value.status_code == 504
    assert isinstance(waited.value.body, dict)
    assert waited.value.body["code"] == "run_still_running"
    for execution_id in (
        error["pasar"]["execution_id"],
        waited.value.body["pasar"]["execution_id"],
    ):
        cancelled = httpx.post(f"{quick}/executions/{execution_id}/cancel", headers=served.headers)
        assert cancelled.status_code == 200, cancelled.text


def test_a_drain_ends_the_wait_and_the_stream_with_its_own_error(
    client: TestClient, make_user: Any
) -> None:
    headers = make_user()
    body = {"name": "draining", "tools": [], "config": slow(1500)}
    agent_id = client.post("/agents", json=body, headers=headers).json()["agent_id"]
    answers: dict[str, Any] = {}

    def ask(stream: bool) -> None:
        request = {"model": agent_id, "messages": said("hi"), "stream": stream}
        answers["stream" if stream else "wait"] = client.post(
            "/v1/chat/completions", json=request, headers=headers
        )

    askers = [threading.Thread(target=ask, args=(stream,)) for stream in (False, True)]
    for asker in askers:
        asker.start()
    for _ in range(500):  # until both runs are being followed
        runs = client.get(f"/agents/{agent_id}/executions", headers=headers).json()
        if len(runs["executions"]) == 2 and client.app_state["runs"].hub.subscribers >= 2:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the runs did not start")
    assert client.portal is not None
    client.portal.call(client.app_state["runs"].begin_drain)  # what SIGTERM does
    for asker in askers:
        asker.join(timeout=60)
    waited = answers["wait"]
    assert waited.status_code == 503, waited.text
    error = waited.json()["error"]
    assert error["code"] == "server_shutting_down"
    assert "shutting down" in error["message"]
    assert "300 s" not in error["message"]
    assert error["pasar"]["status"] in ("queued", "running")
    streamed = answers["stream"]
    assert streamed.status_code == 200
    last = [line for line in streamed.text.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last.removeprefix("data: "))["error"]["code"] == "server_shutting_down"


def team_of(client: TestClient, make_user: Any) -> tuple[dict[str, str], str, str]:
    """An admin's organisation with one member and one viewer: (admin's headers, the member's
    and the viewer's emails); log_in switches them into it."""
    admin, _ = in_new_team(client, make_user())
    emails = []
    for role in ("member", "viewer"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        join(client, admin, make_user(email), email, role)
        emails.append(email)
    return admin, emails[0], emails[1]


def acting_in(client: TestClient, email: str, admin: dict[str, str]) -> dict[str, str]:
    token = client.post("/auth/token", json={"email": email, "password": TEST_PASSWORD}).json()
    own = {"Authorization": f"Bearer {token['access_token']}"}
    organisation = client.get("/organisations", headers=admin).json()["current"]
    switched = client.post("/auth/switch", json={"organisation_id": organisation}, headers=own)
    assert switched.status_code == 200, switched.text
    return {"Authorization": f"Bearer {switched.json()['access_token']}"}


def chat(client: TestClient, headers: dict[str, str], model: str) -> Any:
    body = {"model": model, "messages": said("hi")}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def models_of(client: TestClient, headers: dict[str, str]) -> list[str]:
    listed = client.get("/v1/models", headers=headers)
    assert listed.status_code == 200, listed.text
    return [model["id"] for model in listed.json()["data"]]


def test_nobody_runs_an_agent_they_may_not(client: TestClient, make_user: Any) -> None:
    admin, member_email, viewer_email = team_of(client, make_user)
    config = {"tools": [], "config": scripted()}
    private = client.post("/agents", json={"name": "private", **config}, headers=admin).json()
    viewable = client.post("/agents", json={"name": "viewable", **config}, headers=admin).json()
    runnable = client.post("/agents", json={"name": "runnable", **config}, headers=admin).json()
    for agent, role in ((viewable, "viewer"), (runnable, "member")):
        shared = client.put(f"/agents/{agent['agent_id']}/sharing", json={"role": role},
                            headers=admin)  # fmt: skip
        assert shared.status_code == 200, shared.text
    member = acting_in(client, member_email, admin)
    viewer = acting_in(client, viewer_email, admin)
    stranger = make_user()

    # Another user's real agent id is a model that does not exist.
    for model in (private["agent_id"], "private"):
        refused = chat(client, stranger, model)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "model_not_found"
    assert models_of(client, stranger) == []
    # A member: the private agent is not found; one shared at viewer role is seen, not run.
    assert models_of(client, member) == [runnable["agent_id"]]
    assert chat(client, member, private["agent_id"]).json()["error"]["code"] == "model_not_found"
    by_id = chat(client, member, viewable["agent_id"])
    assert by_id.status_code == 403, by_id.text
    assert by_id.json()["error"]["type"] == "permission_error"
    assert chat(client, member, "viewable").json()["error"]["code"] == "model_not_found"
    assert chat(client, member, "runnable").status_code == 200
    # An organisation's viewer runs nothing, even what is shared to run.
    assert models_of(client, viewer) == []
    for model in (runnable["agent_id"], viewable["agent_id"]):
        refused = chat(client, viewer, model)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "permission_error"
    # An API key capped at viewer: its admin's agents are listed for nothing and not run.
    capped = client.post("/api-keys", json={"name": "ro", "role": "viewer"}, headers=admin)
    assert capped.status_code == 201, capped.text
    capped_key = {"Authorization": f"Bearer {capped.json()['key']}"}
    assert models_of(client, capped_key) == []
    refused = chat(client, capped_key, runnable["agent_id"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "permission_error"
    # A revoked key: 401 on both routes.
    key = client.post("/api-keys", json={"name": "gone"}, headers=admin).json()
    assert chat(client, {"Authorization": f"Bearer {key['key']}"}, "runnable").status_code == 200
    assert client.delete(f"/api-keys/{key['id']}", headers=admin).status_code in (200, 204)
    revoked = {"Authorization": f"Bearer {key['key']}"}
    for response in (chat(client, revoked, runnable["agent_id"]),
                     client.get("/v1/models", headers=revoked)):  # fmt: skip
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "authentication_error"


def test_models_are_rate_limited_as_writes_and_names_resolve_or_are_ambiguous(
    pasar_settings: Settings,
) -> None:
    settings = pasar_settings.with_overrides(rate_limit_writes="4/60")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        credentials = {"email": "lists@example.com", "password": TEST_PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"name": "twin", "tools": [], "config": scripted()}
        first = client.post("/agents", json=body, headers=headers)  # writes: 1
        assert first.status_code == 201, first.text
        assert chat(client, headers, "twin").status_code == 200  # one agent of that name
        assert client.post("/agents", json=body, headers=headers).status_code == 201  # 2
        ambiguous = chat(client, headers, "twin")
        assert ambiguous.status_code == 400, ambiguous.text
        assert ambiguous.json()["error"]["param"] == "model"
        assert "2 of your agents are named 'twin'" in ambiguous.json()["error"]["message"]
        assert client.get("/v1/models", headers=headers).status_code == 200  # 3
        assert client.get("/v1/models", headers=headers).status_code == 200  # 4
        limited = client.get("/v1/models", headers=headers)
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert limited.headers["Retry-After"]
