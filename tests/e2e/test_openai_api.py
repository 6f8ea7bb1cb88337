"""An OpenAI SDK client chats with a pasar agent: the official `openai` package against the app
served on a loopback port (with its lifespan), streaming and not, with the scripted model."""

from __future__ import annotations

import json
import logging
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
from tests.e2e.runs import call
from tests.support.hostile_json import HOSTILE_BODIES
from tests.support.servers import serve_in_thread


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
    assert [r["status"] for r in runs.json()["executions"]] == ["awaiting_approval"]  # one run
    with pytest.raises(openai.APIError, match="waiting for approval"):
        list(client.chat.completions.create(
            model=agent_id, messages=said("go"), stream=True
        ))  # fmt: skip


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
CHAT_BODIES = st.fixed_dictionaries(
    {"model": JSON | st.just("no-such-agent"), "messages": JSON},
    optional={"stream": JSON, "thread_id": JSON, "n": JSON, "tools": JSON},
)


def test_hostile_and_generated_bodies_are_4xx_in_openais_shape(
    client: TestClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    headers = make_user()
    caplog.set_level(logging.INFO)

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(body=HOSTILE_BODIES.map(lambda b: (b.content, b.content_type)) | CHAT_BODIES.map(
        lambda b: (json.dumps(b).encode(), "application/json")))  # fmt: skip
    def attack(body: tuple[bytes, str | None]) -> None:
        caplog.clear()
        content, content_type = body
        sent = headers | ({"Content-Type": content_type} if content_type else {})
        response = client.post("/v1/chat/completions", content=content, headers=sent)
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"]
        assert len(caplog.records) <= 1, [r.getMessage() for r in caplog.records]
        assert not any(record.exc_info for record in caplog.records)

    attack()
    assert client.get("/agents", headers=headers).json() == {"agents": []}
