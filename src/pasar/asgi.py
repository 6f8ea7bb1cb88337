"""The ASGI application of a `pasar serve` worker process, configured from its environment.

`pasar serve` starts the server (granian or uvicorn) with `pasar.asgi:app` as a factory, so
every worker process builds its own app (database pool, revocation listener, inline executor)
against the one database the parent named in `DATABASE_URL`. Each worker dies with the parent
(`pasar.parent_death`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette


def app() -> Starlette:
    from pasar_core.observability.logs import configure_logging
    from pasar_core.settings import Settings

    from pasar.parent_death import die_with_parent

    die_with_parent()
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    from pasar.app import create_app

    return create_app(settings)
