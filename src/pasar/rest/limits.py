"""Rate limits in front of REST handlers: which route class each endpoint counts against, and
the wrapper that charges it (per address; per user and API key when signed in) before the
handler runs. Reads are not limited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pasar_core.rate_limits import RouteClass
from starlette.requests import Request
from starlette.responses import Response

from pasar.rest.requests import located_caller, services_of, source_of

AUTH_PATHS = frozenset({"/auth/signup", "/auth/token", "/auth/refresh", "/auth/password",
                        "/auth/{provider}/start"})  # fmt: skip
RUN_SUFFIXES = ("/execute", "/approval")
Handler = Callable[[Request], Awaitable[Response]]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def route_class(method: str, path: str) -> RouteClass | None:
    if (method == "POST" and path in AUTH_PATHS) or (method, path) == ("DELETE", "/me"):
        return RouteClass.AUTH  # DELETE /me checks a password, as log-in does
    if method == "POST" and path.endswith(RUN_SUFFIXES):
        return RouteClass.RUNS
    if method in WRITE_METHODS and path != "/auth/logout":
        return RouteClass.WRITES
    return None


def rate_limited(handler: Handler, limit: RouteClass, *, signed_in: bool) -> Handler:
    """`handler` behind the limit of `limit` (`signed_in`: the endpoint authenticates, so
    the caller's user and key budgets count too; auth endpoints count per address)."""

    async def endpoint(request: Request) -> Response:
        principal = await located_caller(request) if signed_in else None
        services = services_of(request)
        await services.rate_limiter.check(limit, principal, source_of(request))
        if principal is None or limit is RouteClass.AUTH or services.reads is None:
            return await handler(request)
        # The caller's reads go to the primary while it writes and for a while after (the
        # window counts from the end of the write).
        services.reads.wrote(principal.user_id)
        try:
            return await handler(request)
        finally:
            services.reads.wrote(principal.user_id)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
