"""PASAR_MAX_TOOL_RESULT_BYTES reaches every tool call of a run: the model reads a typed error."""

from __future__ import annotations

from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.e2e.runs import call, error, result, run_tools


def test_a_result_over_the_servers_cap_is_a_tool_error_the_run_survives(
    pasar_settings: Settings,
) -> None:
    capped = pasar_settings.with_overrides(max_tool_result_bytes=2_048)
    with TestClient(create_app(capped), raise_server_exceptions=False) as client:
        credentials = {"email": "cap@example.com", "password": TEST_PASSWORD}
        assert client.post("/auth/signup", json=credentials).status_code == 201
        token = client.post("/auth/token", json=credentials).json()["access_token"]
        rows = [[i, "x" * 20] for i in range(200)]
        written, small, big = run_tools(
            client,
            {"Authorization": f"Bearer {token}"},
            ["csv:write", "csv:read"],
            call("csv:write", path="t.csv", columns=["i", "s"], rows=rows),
            call("csv:read", path="t.csv", limit=3),
            call("csv:read", path="t.csv", limit=200),
        )
    assert result(written)["rows_written"] == 200
    assert result(small)["row_count"] == 3
    assert error(big).startswith("TOOL_RESULT_TOO_LARGE: csv:read returned more than 2048 bytes")
