"""`Idempotency-Key` in front of REST handlers that create (POST /agents, POST /tools, execute,
POST /agents/{id}/schedules):
see `pasar_core.idempotency`. Without the header a request goes straight to its handler.

A handler that creates a run finds its claim in `request.state` (`claim_of`) to hold it in the
transaction that creates the run; a replay of a request that held its claim but never answered
reaches the handler again with `created_by_first` set, and answers that run's state."""

from __future__ import annotations

import json

from pasar_core.errors import PasarError
from pasar_core.idempotency import HEADER, Claim, checked_key, claim, request_digest
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.errors import error_response
from pasar.rest.limits import Handler
from pasar.rest.requests import caller, services_of

REPLAYED = "Idempotent-Replayed"


def claim_of(request: Request) -> Claim | None:
    """This request's claim of its Idempotency-Key (None without the header)."""
    found = getattr(request.state, "idempotency_claim", None)
    return found if isinstance(found, Claim) else None


def created_by_first(request: Request) -> str | None:
    """What the first request with this key created before it was interrupted (a replay)."""
    found = getattr(request.state, "idempotency_created", None)
    return found if isinstance(found, str) else None


def idempotent(handler: Handler, route: str) -> Handler:
    async def endpoint(request: Request) -> Response:
        raw_key = request.headers.get(HEADER)
        if raw_key is None:
            return await handler(request)
        key = checked_key(raw_key)
        principal = await caller(request)
        digest = request_digest(request.url.path, await request.body())
        claimed = await claim(
            services_of(request), principal.user_id, principal.organisation_id, route, key, digest
        )
        if not isinstance(claimed, Claim) and claimed.created is not None:
            request.state.idempotency_created = claimed.created
            replayed = await handler(request)
            replayed.headers[REPLAYED] = "true"
            return replayed
        if not isinstance(claimed, Claim):
            return Response(
                json.dumps(claimed.body), status_code=claimed.status,
                media_type="application/json", headers={REPLAYED: "true"},
            )  # fmt: skip
        request.state.idempotency_claim = claimed
        try:
            response = await handler(request)
        except PasarError as error:
            response = error_response(error.status, error.code, error.message, error.details)
            if error.status >= 500:
                await claimed.release()
                raise
        except BaseException:
            await claimed.release()
            raise
        await claimed.complete(response.status_code, _json(response))
        return response

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _json(response: Response) -> object:
    try:
        return json.loads(bytes(response.body))
    except (ValueError, TypeError):
        return None
