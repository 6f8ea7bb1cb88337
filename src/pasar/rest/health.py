"""GET /healthz (the process answers) and GET /readyz (the database answers, Redis too when
runs go through it, and the process is not draining)."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pasar.rest.requests import services_of

log = logging.getLogger("pasar.health")


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
            await session.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("readiness check failed: %s", type(error).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
