"""A local Google for tests and offline use: OAuth authorize/token/revoke (OpenID ID tokens for
`openid email`, their keys at `/oauth2/v3/certs`) and the Gmail, Docs, Sheets, Calendar and
Drive REST subsets the tools call. Point `PASAR_GOOGLE_BASE_URL` at it."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pasar_google_workspace.emulator.apis import ROUTES
from pasar_google_workspace.emulator.oauth import AUTHORIZE_PATH, authorize, certs, revoke, token
from pasar_google_workspace.emulator.state import EmulatorState


async def _not_found(request: Request, exc: Exception) -> Response:
    body = {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}
    return JSONResponse(body, status_code=404)


def build_emulator(state: EmulatorState | None = None) -> Starlette:
    """The emulator as an ASGI app; `app.state.emulator` is its `EmulatorState`."""
    app = Starlette(
        routes=[
            Route(AUTHORIZE_PATH, authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/oauth2/v3/certs", certs, methods=["GET"]),
            *ROUTES,
        ],
        exception_handlers={404: _not_found},
    )
    app.state.emulator = state or EmulatorState()
    return app


__all__ = ["EmulatorState", "build_emulator"]
