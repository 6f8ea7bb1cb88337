"""GET /healthz (the process answers) and GET /readyz (the database answers with a schema
this release can run on, Redis too when runs go through it, and the process is not draining)."""

from __future__ import annotations

import logging

from pasar_core.storage.migrate import schema_state
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pasar.rest.requests import services_of

log = logging.getLogger("pasar.health")

# Ready on the schema this release migrates to, or on a newer one (a later release's expand
# step, during a rolling update); not ready while migrations are pending.
RUNNABLE = {"current", "newer"}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runs = getattr(request.state, "runs", None)
    if runs is not None and runs.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    if runs is not None and runs.rq is not None and not await runs.rq.ping():
        log.warning("readiness check failed: Redis unreachable")
        return JSONResponse({"status": "unavailable", "redis": "unreachable"}, status_code=503)
    try:
        async with services_of(request).sessionmaker() as session:
            revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:  # no alembic_version table: never migrated
        revision = None
    except Exception as error:
        log.warning("readiness check failed: %s", type(error).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    migrations = schema_state(revision)
    if migrations not in RUNNABLE:
        log.warning("readiness check failed: database schema %s", migrations)
        body = {"status": "unavailable", "database": "ok", "migrations": migrations}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "migrations": migrations})
