"""Run Alembic migrations programmatically (`pasar db upgrade` and server start-up)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

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
