"""Bad input over REST: each gets a 4xx JSON error with a code, never a 500, and changes nothing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

ONE_USER: dict[int, dict[str, str]] = {}  # one user per app for all hypothesis examples

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
AGENT_BODIES = (
    st.fixed_dictionaries(
        {},
        optional={
            "name": JSON_VALUES,
            "tools": st.lists(
                st.sampled_from(["txt:read", "csv:read", "x:y", ""]) | JSON_VALUES, max_size=4
            ),
            "config": st.dictionaries(
                st.sampled_from(
                    ["model", "memory", "limits", "strategy", "fallbacks", "model_options", "zzz"]
                ),
                JSON_VALUES,
                max_size=4,
            ),
        },
    )
    | JSON_VALUES
)


def test_malformed_json_is_400(client: TestClient, make_user) -> None:
    headers = make_user() | {"Content-Type": "application/json"}
    for raw in (
        b"{",
        b"{'name': 1}",
        b"\xff\xfe",
        b"",
        b'{"name": NaN}',
        b'{"name": "x", "config": {"model_options": {"t": Infinity}}}',
    ):
        response = client.post("/agents", content=raw, headers=headers)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "BAD_REQUEST"


def test_non_object_json_is_400(client: TestClient, make_user) -> None:
    headers = make_user()
    for raw in (b"[]", b'"agent"', b"3", b"null"):
        response = client.post(
            "/agents", content=raw, headers=headers | {"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert "JSON object" in response.json()["error"]["message"]


def test_wrong_media_type_is_415(client: TestClient, make_user) -> None:
    response = client.post(
        "/agents", content=b"name=x", headers=make_user() | {"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_oversized_bodies_are_413_with_or_without_content_length(
    client: TestClient, make_user
) -> None:
    headers = make_user() | {"Content-Type": "application/json"}
    huge = json.dumps({"name": "x", "config": {"system_prompt": "a" * 2_000_000}}).encode()
    assert client.post("/agents", content=huge, headers=headers).status_code == 413

    def chunks():
        yield b'{"name": "'
        for _ in range(300):
            yield b"a" * 10_000
        yield b'"}'

    streamed = client.post("/agents", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert client.get("/agents", headers=headers).json() == {"agents": []}


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong_method = client.patch("/agents")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_unknown_fields_in_sign_up_are_refused(client: TestClient) -> None:
    response = client.post(
        "/auth/signup", json={"email": "a@b.co", "password": "x" * 10, "role": "admin"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["path"] == "/role"


def test_bad_sign_up_values(client: TestClient) -> None:
    for body in (
        {"email": "not-an-email", "password": "x" * 10},
        {"email": "a@b.co", "password": "short"},
    ):
        response = client.post("/auth/signup", json=body)
        assert response.status_code == 422
        assert "password" not in json.dumps(response.json()["error"].get("details", {})).replace(
            '"/password"', ""
        )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=AGENT_BODIES)
def test_any_agent_body_gets_201_or_a_typed_4xx(client: TestClient, make_user, body) -> None:
    headers = ONE_USER.get(id(client)) or ONE_USER.setdefault(id(client), make_user())
    before = len(client.get("/agents?limit=200", headers=headers).json()["agents"])
    response = client.post("/agents", json=body, headers=headers)
    after = len(client.get("/agents?limit=200", headers=headers).json()["agents"])
    if response.status_code == 201:
        assert after == before + 1
    else:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] != "INTERNAL"
        assert after == before


def test_nul_characters_are_refused_everywhere(client: TestClient, make_user) -> None:
    signup = client.post("/auth/signup", json={"email": "a\x00@b.co", "password": "x" * 10})
    assert signup.status_code == 422
    headers = make_user()
    for body in ({"name": "a\x00"}, {"name": "a", "config": {"model_options": {"k": ["\x00"]}}}):
        response = client.post("/agents", json=body, headers=headers)
        assert response.status_code == 422
        assert "NUL" in response.json()["error"]["message"]
    assert client.get("/agents", headers=headers).json() == {"agents": []}
