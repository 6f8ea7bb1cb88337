"""Helpers of the schedule tests: agents that answer at once, and the runs a schedule fired, read
from the database itself (not through the API under test)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pasar_core.services import Services
from pasar_core.storage.models import Execution, Schedule
from pasar_core.testing import TEST_PASSWORD
from sqlalchemy import select
from starlette.testclient import TestClient

ANSWER = {"model": "scripted", "model_options": {"script": [{"content": "the digest"}]}}


def sign_up(client: TestClient, email: str | None = None) -> dict[str, str]:
    """A new user's bearer headers."""
    credentials = {"email": email or f"s-{uuid.uuid4().hex[:10]}@example.com",
                   "password": TEST_PASSWORD}  # fmt: skip
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def make_agent(
    client: TestClient, headers: dict[str, str], config: dict[str, Any] | None = None
) -> str:
    body: dict[str, Any] = {"name": "digest", "tools": [], "config": config or ANSWER}
    created = client.post("/agents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["agent_id"])


def make_schedule(
    client: TestClient, headers: dict[str, str], agent_id: str, cron: str, **extra: Any
) -> dict[str, Any]:
    body = {"cron": cron, "input": "send the digest", **extra}
    created = client.post(f"/agents/{agent_id}/schedules", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


def services_of(client: TestClient) -> Services:
    services: Services = client.app_state["services"]
    return services


async def fired_runs(
    services: Services, schedule_id: str
) -> list[tuple[datetime | None, str, str]]:
    """(tick, status, executor) of every run the schedule fired, by tick."""
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(Execution.scheduled_for, Execution.status, Execution.executor)
            .where(Execution.schedule_id == uuid.UUID(schedule_id))
            .order_by(Execution.scheduled_for)
        )
        return [(tick, status, executor) for tick, status, executor in rows.all()]


async def schedule_row(services: Services, schedule_id: str) -> Schedule:
    async with services.sessionmaker() as session:
        row = await session.get(Schedule, uuid.UUID(schedule_id))
        assert row is not None
        return row
