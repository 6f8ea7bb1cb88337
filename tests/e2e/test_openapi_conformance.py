"""`/openapi.json` says what the server does: schemathesis generates requests from it (valid and
invalid ones, a few per operation, derandomized) against the app served on loopback, and checks
each answer's status, content type, headers and body against the document; an invalid body must
be refused. The `Allow` of a 405 lists exactly the documented methods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from pasar.app import create_app
from tests.support.servers import serve_in_thread

CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance, negative_data_rejection,
]  # fmt: skip
EXAMPLES_PER_MODE = 4  # per operation, valid and invalid: the suite's time budget


@pytest.fixture
def served(pasar_settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """The app with its lifespan on a loopback port, and a signed-in user."""
    with serve_in_thread(create_app(pasar_settings), lifespan="on") as base:
        credentials = {"email": "openapi@example.com", "password": TEST_PASSWORD}
        assert httpx.post(f"{base}/auth/signup", json=credentials).status_code == 201
        token = httpx.post(f"{base}/auth/token", json=credentials).json()["access_token"]
        yield base, {"Authorization": f"Bearer {token}"}


def failures_in(
    operation: Any, mode: GenerationMode, base: str, headers: dict[str, str]
) -> list[str]:
    """What the checks found in a few cases of `operation` generated in `mode`."""
    label = f"{operation.label} ({mode.value})"
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        except Exception as failure:  # every operation is checked; all failures are listed
            found.append(f"{label}: {failure}"[:2000])

    try:
        check()
    except Unsatisfiable:  # nothing in this operation can be made invalid
        assert mode is GenerationMode.NEGATIVE, label
    return found


def test_the_server_answers_as_its_openapi_document_says(
    served: tuple[str, dict[str, str]],
) -> None:
    base, headers = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the document does not load"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) > 50
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += failures_in(operation, mode, base, headers)
    assert not failures, "\n\n".join(failures)


def test_a_method_a_path_lacks_is_a_405_allowing_exactly_the_documented_ones(
    served: tuple[str, dict[str, str]],
) -> None:
    base, headers = served
    document = httpx.get(f"{base}/openapi.json").json()
    for path, operations in document["paths"].items():
        documented = {method.upper() for method in operations}
        if "GET" in documented:
            documented.add("HEAD")
        url = base + path.replace("{", "x").replace("}", "x")
        response = httpx.request("PATCH", url, headers=headers)
        assert response.status_code == 405, path
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == documented, path


def test_bodies_are_taken_only_as_the_types_the_document_names(
    served: tuple[str, dict[str, str]],
) -> None:
    base, headers = served
    for wrong in ("5", True, 2.5, 3.0):
        config = {"limits": {"max_tool_calls": wrong}}
        response = httpx.post(f"{base}/agents", headers=headers,
                              json={"name": "typed", "tools": [], "config": config})  # fmt: skip
        assert response.status_code == 422, (wrong, response.text)
        assert response.json()["error"]["details"]["errors"][0]["path"] == (
            "/config/limits/max_tool_calls"
        )
    fine = httpx.post(f"{base}/agents", headers=headers,
                      json={"name": "typed", "tools": [], "config": {"limits": {"max_tool_calls": 3}}})  # fmt: skip
    assert fine.status_code == 201


def test_a_refused_body_naming_a_nul_character_is_kept_for_its_idempotency_key(
    served: tuple[str, dict[str, str]],
) -> None:
    base, headers = served
    agent = httpx.post(f"{base}/agents", headers=headers, json={"name": "nul", "tools": []})
    url = f"{base}/agents/{agent.json()['agent_id']}/execute"
    keyed = headers | {"Idempotency-Key": "nul-1", "Content-Type": "application/json"}
    body = b'{"input": {"a\\u0000b": 1}}'
    first = httpx.post(url, headers=keyed, content=body)
    assert first.status_code == 422, first.text
    assert "\\u0000" in first.json()["error"]["message"]  # shown escaped, never raw
    again = httpx.post(url, headers=keyed, content=body)
    assert again.status_code == 422
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_run_still_going_is_a_documented_202(served: tuple[str, dict[str, str]]) -> None:
    base, headers = served
    document = httpx.get(f"{base}/openapi.json").json()
    execute = document["paths"]["/agents/{agent_id}/execute"]["post"]["responses"]
    assert {"200", "202"} <= set(execute)
    config = {
        "model": "scripted",
        "model_options": {"script": [{"content": "x"}], "delay_ms": 2000},
    }
    agent = httpx.post(f"{base}/agents", headers=headers,
                       json={"name": "slow", "tools": [], "config": config})  # fmt: skip
    run = httpx.post(f"{base}/agents/{agent.json()['agent_id']}/execute", headers=headers,
                     json={"input": "hi", "parameters": {"wait": False}})  # fmt: skip
    assert run.status_code == 202
    page = document["paths"]["/auth/{provider}/start"]["get"]["responses"]
    assert set(page["200"]["content"]) == {"text/html"}
    assert set(page["400"]["content"]) == {"text/html"}
