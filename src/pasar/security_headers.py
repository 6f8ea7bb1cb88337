"""Security headers on every HTTP answer: no MIME sniffing, no framing, no referrer, a Content
Security Policy (API answers load nothing; the GraphiQL page may run its inline start-up script
and load GraphiQL from unpkg.com, where Strawberry's page takes it from), and HSTS when
configured (`PASAR_HSTS_MAX_AGE`, behind HTTPS). A header a route set itself is kept (the
consent pages and file downloads have their own policies)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
GRAPHIQL_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://unpkg.com; "
    "style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data:; "
    "font-src 'self' data: https://unpkg.com; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to each response's start message."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int = 0) -> None:
        self.app = app
        self.extra = dict(COMMON)
        if hsts_max_age_s > 0:
            self.extra["strict-transport-security"] = f"max-age={hsts_max_age_s}; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.extra.items():
                    if name not in headers:
                        headers[name] = value
                if "content-security-policy" not in headers:
                    page = headers.get("content-type", "").startswith("text/html")
                    graphiql = page and scope.get("path") == "/graphql"
                    headers["content-security-policy"] = GRAPHIQL_POLICY if graphiql else API_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
