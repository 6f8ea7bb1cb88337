"""deploy/observability: the alert rules and the Grafana dashboard name only what pasar exports.

The app is scraped after real traffic (requests, errors, log-ins, a GraphQL operation, a run
with tool calls) and every `pasar_*` metric a rule or panel queries must be a series of that
scrape, with the labels it matches on or groups by."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pasar_core.testing import TEST_PASSWORD
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.e2e.runs import call, run_tools

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
METRIC = re.compile(r"\bpasar_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(pasar_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# Labels Prometheus adds (job, instance), the buckets' le, and multiprocess mode's pid.
ADDED_LABELS = {"le", "job", "instance", "pid"}
SEVERITIES = {"page", "ticket"}


@pytest.fixture
def exported(client: TestClient, make_user) -> dict[str, set[str]]:
    """Series name -> label names, from /metrics after some of everything."""
    headers = make_user()
    credentials = {"email": "scraped@example.com", "password": TEST_PASSWORD}
    client.post("/auth/signup", json=credentials)
    refresh = client.post("/auth/token", json=credentials).json()["refresh_token"]
    assert client.post("/auth/refresh", json={"refresh_token": refresh}).status_code == 200
    client.post("/auth/token", json={"email": "nobody@example.com", "password": "x" * 12})
    client.get("/nowhere")
    client.post("/graphql", json={"query": "query Health { __typename }"})
    run_tools(client, headers, ["txt:write", "txt:read"],
              call("txt:write", path="a.txt", content="x"), call("txt:read", path="b.txt"))  # fmt: skip
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        names = {
            "counter": [f"{family.name}_total"],
            "histogram": [f"{family.name}_{s}" for s in ("bucket", "count", "sum")],
        }.get(family.type, [family.name])
        for name in names:
            series.setdefault(name, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def family_of(series: str) -> str:
    return re.sub(r"_(total|bucket|count|sum|created)$", "", series)


def check_expression(expr: str, exported: dict[str, set[str]]) -> list[str]:
    problems = []
    used = set(METRIC.findall(expr))
    if not used:
        problems.append(f"queries no pasar metric: {expr}")
    for name in used - set(exported):
        problems.append(f"{name} is not exported")
    for name, matchers in SELECTOR.findall(expr):
        labels = exported.get(name, set())
        for label in MATCHER.findall(matchers):
            if labels and label not in labels | ADDED_LABELS:
                problems.append(f"{name} has no label {label!r} (it has {sorted(labels)})")
    known = set().union(*(exported.get(name, set()) for name in used)) | ADDED_LABELS
    for group in GROUPING.findall(expr):
        for label in (part.strip() for part in group.split(",") if part.strip()):
            if label not in known:
                problems.append(f"groups by {label!r}, which none of {sorted(used)} has")
    return problems


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_query_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    rules = alert_rules()
    problems = [f"{rule['alert']}: {problem}" for rule in rules
                for problem in check_expression(rule["expr"], exported)]  # fmt: skip
    assert problems == []
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule
        assert rule["annotations"]["summary"], rule
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule


def test_alert_rules_cover_what_the_issue_names() -> None:
    queried = " ".join(rule["expr"] for rule in alert_rules())
    for metric in ("pasar_http_errors_total", "pasar_http_request_seconds_bucket",
                   "pasar_runs_finished_total", "pasar_queue_depth", "pasar_logins_total",
                   "pasar_db_pool_timeouts_total", "pasar_db_pool_connections"):  # fmt: skip
        assert metric in queried


def test_the_dashboard_queries_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [variable["definition"] for variable in dashboard["templating"]["list"]]
    problems = [problem for expr in expressions for problem in check_expression(expr, exported)]
    assert problems == []
    assert {i["name"] for i in dashboard["__inputs"]} == {"DS_PROMETHEUS"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # Every metric pasar exports is on the dashboard (the count of installed tools aside).
    shown = {family_of(name) for name in METRIC.findall(" ".join(expressions))}
    assert {family_of(name) for name in exported} - shown <= {"pasar_tools"}


def test_the_checks_catch_a_wrong_name_or_label(exported: dict[str, set[str]]) -> None:
    assert check_expression("rate(pasar_http_requests[5m])", exported)  # the family, no _total
    assert check_expression('sum(pasar_queue_depth{qeueu="x"})', exported)
    assert check_expression("sum by (path) (rate(pasar_http_requests_total[5m]))", exported)
    assert check_expression("up", exported)
    assert not check_expression('sum by (route) (pasar_http_requests_total{status="200"})',
                                exported)  # fmt: skip
