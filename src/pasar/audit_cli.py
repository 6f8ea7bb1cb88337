"""`pasar audit`: the operator's view of the audit log and the scope-usage export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _friendly(action: Callable[[], None]) -> None:
    """Run `action` with the CLI's error handling (imported late: cli imports this module)."""
    from pasar.cli_support import friendly_errors

    friendly_errors(action)()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@click.group()
def audit() -> None:
    """The audit log (append-only): list rows, export provider scope usage."""


@audit.command("list")
@click.option(
    "--organisation", "organisation_id", default=None, help="Only this organisation id's rows."
)
@click.option("--actor", "actor_id", default=None, help="Only this user id's actions.")
@click.option("--action", default=None, help="An action, or a prefix ending in '.' (agent.).")
@click.option("--target-type", default=None)
@click.option("--target-id", default=None)
@click.option("--since", default=None, help="ISO 8601 time with a zone (2026-01-01T00:00Z).")
@click.option("--until", default=None, help="ISO 8601 time with a zone.")
@click.option("--before-id", type=int, default=None, help="The page after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def audit_list(as_json: bool, **filters: Any) -> None:
    """Audit rows, newest first."""

    def list_rows() -> None:
        from pasar_core.audit.queries import AuditFilter, search
        from pasar_core.schemas import parse_model
        from pasar_core.settings import Settings

        from pasar.lifecycle import running_services

        where = parse_model(AuditFilter, {k: v for k, v in filters.items() if v is not None},
                            what="filter")  # fmt: skip

        async def collect() -> tuple[list[dict[str, Any]], int | None]:
            async with running_services(Settings.from_env()) as services:
                page = await search(services, where)
                return [row.as_json() for row in page.rows], page.next_before

        rows, next_before = _run(collect())
        for row in rows:
            if as_json:
                click.echo(json.dumps(row))
            else:
                target = f"{row['target_type']}:{row['target_id']}" if row["target_type"] else "-"
                click.echo(f"{row['id']}  {row['at']}  {row['action']:<22} {row['outcome']:<6} "
                           f"actor={row['actor_id'] or row['actor_via']} target={target} "
                           f"from={row['source'] or '-'}")  # fmt: skip
        if next_before is not None:
            click.echo(f"more: --before-id {next_before}", err=True)

    _friendly(list_rows)


@audit.command("scope-usage")
@click.option("--provider", default=None, help="Only this provider (google).")
@click.option("--since", default=None, help="ISO 8601 time with a zone.")
@click.option("--until", default=None, help="ISO 8601 time with a zone.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON.")
@click.option("--json", "as_json", is_flag=True, help="JSON (the default).")
def audit_scope_usage(
    provider: str | None, since: str | None, until: str | None, as_csv: bool, as_json: bool
) -> None:
    """Which provider scopes which agents' tool calls used: counts, first and last use."""
    if as_csv and as_json:
        raise click.UsageError("--csv and --json: choose one")

    def export() -> None:
        from pasar_core.audit.queries import scope_usage, usage_csv
        from pasar_core.settings import Settings

        from pasar.lifecycle import running_services

        start, end = _time(since, "--since"), _time(until, "--until")

        async def collect() -> Any:
            async with running_services(Settings.from_env()) as services:
                return await scope_usage(services, provider=provider, since=start, until=end)

        usage = _run(collect())
        if as_csv:
            click.echo(usage_csv(usage), nl=False)
        else:
            click.echo(json.dumps([item.as_json() for item in usage], indent=2))

    _friendly(export)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a time zone (Z or +01:00)", param_hint=option)
    return parsed
