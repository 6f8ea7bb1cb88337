"""An agent's schedules through REST and GraphQL: create, list, pause, resume, delete, audited;
another user's or another agent's schedule is NOT_FOUND; bad expressions, timezones, too
frequent ones, an agent at its cap: typed refusals that store nothing; Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.schedules.support import make_agent, make_schedule

Headers = dict[str, str]
CAP = 3


@pytest.fixture
def client(pasar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pasar_settings.with_overrides(schedule_cap=CAP))) as client:
        yield client


def sign_up(client: TestClient) -> Headers:
    credentials = {"email": f"a-{uuid.uuid4().hex[:10]}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def listed(client: TestClient, headers: Headers, agent_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/agents/{agent_id}/schedules", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["schedules"])


def gql(client: TestClient, headers: Headers, document: str, **variables: Any) -> dict[str, Any]:
    answer = client.post("/graphql", json={"query": document, "variables": variables},
                         headers=headers)  # fmt: skip
    return dict(answer.json())


def test_rest_lifecycle_is_audited(client: TestClient) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    created = make_schedule(client, headers, agent_id, "30 8 * * 1-5", timezone="Asia/Tokyo",
                            input={"report": "weekly"})  # fmt: skip
    assert (created["cron"], created["timezone"], created["input"]) == (
        "30 8 * * 1-5", "Asia/Tokyo", {"report": "weekly"})  # fmt: skip
    assert created["paused"] is False
    assert created["next_run_at"] is not None
    assert listed(client, headers, agent_id) == [created]
    base = f"/agents/{agent_id}/schedules/{created['id']}"
    assert client.post(f"{base}/pause", headers=headers).json()["paused"] is True
    again = client.post(f"{base}/pause", headers=headers)  # harmless, and not audited twice
    assert again.status_code == 200
    assert again.json()["paused"] is True
    resumed = client.post(f"{base}/resume", headers=headers).json()
    assert resumed["paused"] is False
    assert resumed["next_run_at"] is not None
    assert client.delete(base, headers=headers).status_code == 204
    assert listed(client, headers, agent_id) == []
    assert client.delete(base, headers=headers).status_code == 404

    rows = client.get("/audit?action=schedule.", headers=headers).json()["rows"]
    assert [row["action"] for row in rows] == [
        "schedule.deleted", "schedule.resumed", "schedule.paused", "schedule.created"]  # fmt: skip
    assert {row["target_id"] for row in rows} == {created["id"]}


def test_graphql_lifecycle(client: TestClient) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    fields = "id cron timezone input paused nextRunAt"
    made = gql(client, headers,
               f'mutation($a: ID!) {{ createSchedule(agentId: $a, cron: "0 7 * * *", '
               f'timezone: "America/Sao_Paulo", input: {{topic: "news"}}) {{ {fields} }} }}',
               a=agent_id)  # fmt: skip
    schedule = made["data"]["createSchedule"]
    assert (schedule["cron"], schedule["timezone"], schedule["input"]) == (
        "0 7 * * *", "America/Sao_Paulo", {"topic": "news"})  # fmt: skip
    query = "query($a: ID!) { schedules(agentId: $a) { id paused } }"
    assert gql(client, headers, query, a=agent_id)["data"]["schedules"] == [
        {"id": schedule["id"], "paused": False}]  # fmt: skip
    ids = {"a": agent_id, "s": schedule["id"]}
    paused = gql(client, headers, "mutation($a: ID!, $s: ID!) { pauseSchedule(agentId: $a, "
                 "scheduleId: $s) { paused nextRunAt } }", **ids)  # fmt: skip
    assert paused["data"]["pauseSchedule"] == {"paused": True, "nextRunAt": None}
    resumed = gql(client, headers, "mutation($a: ID!, $s: ID!) { resumeSchedule(agentId: $a, "
                  "scheduleId: $s) { paused } }", **ids)  # fmt: skip
    assert resumed["data"]["resumeSchedule"] == {"paused": False}
    deleted = gql(client, headers, "mutation($a: ID!, $s: ID!) { deleteSchedule(agentId: $a, "
                  "scheduleId: $s) }", **ids)  # fmt: skip
    assert deleted["data"]["deleteSchedule"] is True
    assert gql(client, headers, query, a=agent_id)["data"]["schedules"] == []
    bad = gql(client, headers, 'mutation($a: ID!) { createSchedule(agentId: $a, cron: "* * *", '
              'input: "x") { id } }', a=agent_id)  # fmt: skip
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CRON"


def test_another_users_or_agents_schedule_is_not_found_and_nothing_changes(
    client: TestClient,
) -> None:
    owner, stranger = sign_up(client), sign_up(client)
    agent_id, other_agent = make_agent(client, owner), make_agent(client, owner)
    strangers_agent = make_agent(client, stranger)
    schedule = make_schedule(client, owner, agent_id, "0 9 * * *")
    theirs = make_schedule(client, stranger, strangers_agent, "0 9 * * *")
    attempts = [
        (stranger, f"/agents/{agent_id}/schedules/{schedule['id']}"),  # a foreign agent
        (stranger, f"/agents/{strangers_agent}/schedules/{schedule['id']}"),  # their agent
        (owner, f"/agents/{other_agent}/schedules/{schedule['id']}"),  # the owner's other agent
        (owner, f"/agents/{agent_id}/schedules/{theirs['id']}"),
        (owner, f"/agents/{agent_id}/schedules/not-a-uuid"),
        (owner, f"/agents/{agent_id}/schedules/{uuid.uuid4()}"),
    ]
    for headers, path in attempts:
        for method, suffix in (("POST", "/pause"), ("POST", "/resume"), ("DELETE", "")):
            answer = client.request(method, path + suffix, headers=headers)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["code"] == "NOT_FOUND"
    hidden = client.get(f"/agents/{agent_id}/schedules", headers=stranger)
    assert hidden.status_code == 404
    for mutation, selection in (("pauseSchedule", "{ id }"), ("resumeSchedule", "{ id }"),
                                ("deleteSchedule", "")):  # fmt: skip
        refused = gql(client, stranger, f"mutation($a: ID!, $s: ID!) {{ {mutation}(agentId: $a, "
                      f"scheduleId: $s) {selection} }}", a=strangers_agent, s=schedule["id"])  # fmt: skip
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND", refused
    assert listed(client, owner, agent_id) == [schedule]  # untouched
    assert listed(client, stranger, strangers_agent) == [theirs]


@pytest.mark.parametrize(
    ("body", "code"),
    [({"cron": "* * * *"}, "INVALID_CRON"), ({"cron": "61 * * * *"}, "INVALID_CRON"),
     ({"cron": "0 0 31 2 *"}, "INVALID_CRON"), ({"cron": "@reboot"}, "INVALID_CRON"),
     ({"cron": "* * * * * * 2030"}, "INVALID_CRON"), ({"cron": "0 9 * * *\n0 10 * * *"}, "INVALID_CRON"),
     ({"cron": "* * * * * */5"}, "SCHEDULE_TOO_FREQUENT"),
     ({"timezone": "Mars/Olympus"}, "INVALID_TIMEZONE"),
     ({"timezone": "../../etc/passwd"}, "INVALID_TIMEZONE"),
     ({"input": ""}, "VALIDATION_FAILED"), ({"input": {}}, "VALIDATION_FAILED"),
     ({"input": "x" * 100_001}, "VALIDATION_FAILED"), ({"every": "day"}, "VALIDATION_FAILED"),
     ({"cron": 5}, "VALIDATION_FAILED"), ({"thread_id": "t1"}, "BAD_REQUEST")],
)  # fmt: skip
def test_bad_schedules_are_typed_refusals_that_store_nothing(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    sent = {"cron": "0 9 * * *", "input": "hi"} | body
    answer = client.post(f"/agents/{agent_id}/schedules", json=sent, headers=headers)
    assert answer.status_code in (400, 413, 422), answer.text
    assert answer.json()["error"]["code"] == code, answer.text
    assert listed(client, headers, agent_id) == []


def test_an_agent_carries_at_most_its_cap_of_schedules(client: TestClient) -> None:
    headers, other = sign_up(client), sign_up(client)
    agent_id = make_agent(client, headers)
    for hour in range(CAP):
        make_schedule(client, headers, agent_id, f"0 {hour} * * *")
    over = client.post(f"/agents/{agent_id}/schedules", json={"cron": "0 9 * * *", "input": "x"},
                       headers=headers)  # fmt: skip
    assert over.status_code == 409
    assert over.json()["error"]["code"] == "SCHEDULE_LIMIT_REACHED"
    assert over.json()["error"]["details"] == {"limit": CAP, "per": "agent"}
    assert len(listed(client, headers, agent_id)) == CAP
    make_schedule(client, other, make_agent(client, other), "0 9 * * *")  # another agent's own cap


def test_idempotency_key_answers_the_first_schedule_again(client: TestClient) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    keyed = headers | {"Idempotency-Key": "nightly-1"}
    body = {"cron": "0 2 * * *", "input": "nightly"}
    first = client.post(f"/agents/{agent_id}/schedules", json=body, headers=keyed)
    second = client.post(f"/agents/{agent_id}/schedules", json=body, headers=keyed)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == second.json()
    reused = client.post(f"/agents/{agent_id}/schedules", json=body | {"input": "other"},
                         headers=keyed)  # fmt: skip
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(listed(client, headers, agent_id)) == 1


def test_hostile_schedule_bodies_get_typed_answers(client: TestClient) -> None:
    headers = sign_up(client)
    agent_id = make_agent(client, headers)
    stored = 0

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
    @given(cron=st.one_of(st.text(max_size=40), st.sampled_from(["0 9 * * *", "*/30 * * * *"]),
                          st.integers(), st.none()),
           timezone=st.one_of(st.text(max_size=30), st.sampled_from(["UTC", "Europe/Berlin"])),
           input=st.one_of(st.text(max_size=20), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)))  # fmt: skip
    def attack(cron: Any, timezone: str, input: Any) -> None:
        nonlocal stored
        body = {"cron": cron, "timezone": timezone, "input": input}
        answer = client.post(f"/agents/{agent_id}/schedules", json=body, headers=headers)
        assert answer.status_code in (201, 400, 409, 422), answer.text[:300]
        if answer.status_code == 201:
            stored += 1
            client.delete(f"/agents/{agent_id}/schedules/{answer.json()['id']}", headers=headers)
        else:
            assert answer.json()["error"]["code"] in (
                "INVALID_CRON", "INVALID_TIMEZONE", "SCHEDULE_TOO_FREQUENT", "VALIDATION_FAILED",
                "BAD_REQUEST")  # fmt: skip

    attack()
    assert listed(client, headers, agent_id) == []
