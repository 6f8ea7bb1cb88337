"""Hostile files for an agent's knowledge: whatever the bytes, a typed answer (201, or a 4xx
with a code), never a 500; what is refused stores nothing."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.memory.test_knowledge_api import signed_in, vector_agent

KINDS = ["pdf", "docx", "pptx", "xlsx", "csv", "txt", "md", "exe", "PDF", ""]
HEADS = [b"", b"%PDF-1.7\n", b"PK\x03\x04", b"\xef\xbb\xbf", b"a,b\n"]


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pasar_settings)) as client:
        yield client


def test_hostile_files_get_typed_answers(client: TestClient) -> None:
    headers = signed_in(client, "hostile@example.com")
    agent = vector_agent(client, headers)
    stored = 0

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(kind=st.sampled_from(KINDS), head=st.sampled_from(HEADS), body=st.binary(max_size=600))
    def attack(kind: str, head: bytes, body: bytes) -> None:
        nonlocal stored
        content = base64.b64encode(head + body).decode()
        answer = client.post(f"/agents/{agent}/knowledge/files", headers=headers,
                             json={"filename": f"f.{kind}", "content_base64": content})  # fmt: skip
        assert answer.status_code in (201, 413, 415, 422), answer.text[:300]
        if answer.status_code == 201:
            stored += 1
        else:
            assert answer.json()["error"]["code"] in (
                "UNSUPPORTED_FILE_TYPE", "UNREADABLE_DOCUMENT", "VALIDATION_FAILED",
                "PAYLOAD_TOO_LARGE")  # fmt: skip

    attack()
    documents = client.get(f"/agents/{agent}/knowledge", headers=headers).json()["documents"]
    assert len(documents) == stored  # each refusal stored nothing
