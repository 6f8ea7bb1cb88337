"""GET /metrics: Prometheus text with request counts and executions by status."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_and_executions(client: TestClient, make_user) -> None:
    headers = make_user()
    config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
    agent_id = client.post("/agents", json={"name": "m", "config": config}, headers=headers).json()[
        "agent_id"
    ]
    for _ in range(2):
        assert (
            client.post(
                f"/agents/{agent_id}/execute", json={"input": "x"}, headers=headers
            ).status_code
            == 200
        )
    client.get(f"/agents/{agent_id}/nope", headers=headers)
    found = samples(client)
    assert found[("pasar_executions", (("status", "succeeded"),))] == 2
    execute = (("method", "POST"), ("route", "/agents/{agent_id}/execute"), ("status", "200"))
    assert found[("pasar_http_requests_total", execute)] == 2
    missing = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert found[("pasar_http_requests_total", missing)] == 1
    assert found[("pasar_tools", ())] >= 4
    assert (
        "pasar_http_request_seconds_count",
        (("method", "POST"), ("route", "/agents/{agent_id}/execute")),
    ) in found


def test_the_pages_files_are_one_route(client: TestClient) -> None:
    page = client.get("/docs").text
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert client.get(url).status_code == 200
    client.get("/static/not-the-digest/x.js")
    found = samples(client)
    files = (("method", "GET"), ("route", "/static/{file}"), ("status", "200"))
    assert found[("pasar_http_requests_total", files)] == 3  # swagger's script, css, start.js
    assert not [labels for _, labels in found if any("/static/" in v and "{file}" not in v
                                                     for _, v in labels)]  # fmt: skip
