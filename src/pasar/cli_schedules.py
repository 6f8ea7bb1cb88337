"""`pasar schedules`: the operator's view of every schedule (who owns it, on which agent, when it
fires next, and why the server paused it)."""

from __future__ import annotations

import uuid
from typing import Any

import click

from pasar.cli_support import emit, friendly_errors, json_flag, run, table


@click.group()
def schedules() -> None:
    """Agents' cron schedules (see the README's Scheduled runs)."""


@schedules.command("list")
@click.option("--agent", "agent_id", default=None, help="Only this agent id's schedules.")
@click.option("--paused", is_flag=True, help="Only paused schedules.")
@json_flag
@friendly_errors
def schedules_list(agent_id: str | None, paused: bool, as_json: bool) -> None:
    """Every schedule, soonest next run first (paused ones last)."""
    from pasar_core.settings import Settings
    from pasar_core.storage.models import Schedule
    from sqlalchemy import select

    from pasar.lifecycle import running_services

    statement = select(Schedule).order_by(Schedule.next_run_at.asc().nulls_last(), Schedule.id)
    if agent_id is not None:
        try:
            statement = statement.where(Schedule.agent_id == uuid.UUID(agent_id))
        except ValueError:
            raise click.BadParameter(
                f"{agent_id!r} is not an agent id", param_hint="--agent"
            ) from None
    if paused:
        statement = statement.where(Schedule.paused_at.is_not(None))

    async def collect() -> list[dict[str, Any]]:
        async with (
            running_services(Settings.from_env()) as services,
            services.sessionmaker() as session,
        ):
            return [_row(found) for found in await session.scalars(statement)]

    rows = run(collect())
    if as_json:
        emit(True, rows)
        return
    table(
        ("ID", "AGENT", "OWNER", "CRON", "TIMEZONE", "NEXT RUN", "PAUSED"),
        [(r["id"], r["agent_id"], r["owner_id"], r["cron"], r["timezone"],
          r["next_run_at"] or "-", r["paused_reason"] or ("yes" if r["paused"] else "no"))
         for r in rows],
        empty="no schedules",
    )  # fmt: skip


def _row(found: Any) -> dict[str, Any]:
    return {
        "id": str(found.id), "agent_id": str(found.agent_id), "owner_id": str(found.owner_id),
        "cron": found.cron, "timezone": found.timezone,
        "next_run_at": found.next_run_at.isoformat() if found.next_run_at else None,
        "last_fired_at": found.last_fired_at.isoformat() if found.last_fired_at else None,
        "paused": found.paused_at is not None, "paused_reason": found.paused_reason,
    }  # fmt: skip
