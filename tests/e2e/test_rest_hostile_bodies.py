"""Malformed bodies to every REST route that reads JSON, with and without credentials: never a
5xx, always a typed 4xx, at most one log line, and a 5,000-deep body is a plain 400."""

from __future__ import annotations

import logging
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.authz.policy import rule
from starlette.testclient import TestClient

from pasar.rest.routes import ENDPOINTS, Endpoint
from tests.support.hostile_json import HOSTILE_BODIES, HostileBody

BODY_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if endpoint.body is not None]
DECODING_CODES = {"BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE", "VALIDATION_FAILED"}


def url(endpoint: Endpoint) -> str:
    """The endpoint's path with each `{param}` filled in (ids of nothing)."""
    parts = endpoint.path.split("/")
    return "/".join(str(uuid.uuid4()) if part.startswith("{") else part for part in parts)


def send(client: TestClient, endpoint: Endpoint, body: HostileBody, headers: dict[str, str]):
    headers = headers | ({"Content-Type": body.content_type} if body.content_type else {})
    return client.request(endpoint.method, url(endpoint), content=body.content, headers=headers)


def test_every_json_route_is_covered() -> None:
    assert {(e.method, e.path) for e in BODY_ENDPOINTS} >= {
        ("POST", "/auth/signup"),
        ("POST", "/agents"),
        ("PUT", "/agents/{agent_id}"),
        ("POST", "/agents/{agent_id}/execute"),
    }


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_a_5000_deep_body_is_a_400_without_credentials(client: TestClient, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    deep = opener * 5000 + b"1" + closer * 5000
    for endpoint in BODY_ENDPOINTS:
        response = client.request(
            endpoint.method,
            url(endpoint),
            content=deep,
            headers={"Content-Type": "application/json"},
        )
        if endpoint.auth:
            assert response.status_code == 401, endpoint.path  # refused before the body is read
        else:
            assert response.status_code == 400, endpoint.path
            error = response.json()["error"]
            assert error["code"] == "BAD_REQUEST"
            assert error["details"] == {"max_depth": 64}


def test_malformed_bodies_get_typed_4xx_on_every_route(
    client: TestClient, make_user, caplog: pytest.LogCaptureFixture
) -> None:
    signed_in = make_user()
    caplog.set_level(logging.INFO)

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        body=HOSTILE_BODIES,
        endpoint=st.sampled_from(BODY_ENDPOINTS),
        with_credentials=st.booleans(),
    )
    def attack(body: HostileBody, endpoint: Endpoint, with_credentials: bool) -> None:
        caplog.clear()
        response = send(client, endpoint, body, signed_in if with_credentials else {})
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        code = response.json()["error"]["code"]
        if endpoint.auth and not with_credentials:
            assert code == "UNAUTHENTICATED"
        elif rule(endpoint.op).operator:  # the policy refuses before the body is read
            assert code == "FORBIDDEN", response.text[:300]
        else:  # refused while the body is decoded, before any lookup or write
            assert code in DECODING_CODES, response.text[:300]
            if body.kind != "garbage":  # random bytes may happen to be JSON ("{}")
                assert code != "VALIDATION_FAILED", response.text[:300]
        assert len(caplog.records) <= 1, [r.getMessage() for r in caplog.records]
        assert not any(record.exc_info for record in caplog.records)

    attack()
    assert client.get("/agents", headers=signed_in).json() == {"agents": []}
