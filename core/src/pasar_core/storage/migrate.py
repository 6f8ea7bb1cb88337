"""Run Alembic migrations programmatically (`pasar db upgrade` and server start-up)."""

from __future__ import annotations

import asyncio
import functools
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "pasar_core.storage:migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: migrate to `revision`. Concurrent callers serialise on an advisory lock."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)


SchemaState = Literal["current", "newer", "behind", "missing"]


@functools.cache
def known_revisions() -> tuple[str, frozenset[str]]:
    """This release's head revision and every revision it ships (read once per process)."""
    scripts = ScriptDirectory.from_config(alembic_config(""))
    heads = scripts.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, not {heads}")
    return heads[0], frozenset(revision.revision for revision in scripts.walk_revisions())


def schema_state(database_revision: str | None) -> SchemaState:
    """Where the database's schema stands against this release's migrations. `newer`: a
    revision this release does not ship, which a later release applied; expand-then-contract
    migrations (docs/deploy.md) keep this release working beside it during a rolling update."""
    head, known = known_revisions()
    if database_revision is None:
        return "missing"
    if database_revision == head:
        return "current"
    return "behind" if database_revision in known else "newer"
