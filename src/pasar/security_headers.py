"""Security headers on every HTTP answer: no MIME sniffing, no framing, no referrer, a Content
Security Policy (API answers load nothing; pasar's HTML pages, the dashboard, GraphiQL and the
API docs, load scripts, styles and fonts from this origin only and run no inline script), and
HSTS when configured (`PASAR_HSTS_MAX_AGE`, behind HTTPS). A header a route set itself is kept (the
consent pages and file downloads have their own policies)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Inline styles stay allowed: GraphiQL's editor and Swagger UI set style attributes.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# The dashboard is pasar's own code: no inline style either.
DASHBOARD_POLICY = PAGE_POLICY.replace("style-src 'self' 'unsafe-inline'", "style-src 'self'")
CSP = b"content-security-policy"
COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to each response's start message (as raw bytes,
    built once: this runs on every answer, reads included)."""

    def __init__(self, app: ASGIApp, *, hsts_max_age_s: int = 0) -> None:
        self.app = app
        extra = dict(COMMON)
        if hsts_max_age_s > 0:
            extra["strict-transport-security"] = f"max-age={hsts_max_age_s}; includeSubDomains"
        self.extra = [(name.encode(), value.encode()) for name, value in extra.items()]
        self.api_policy = (CSP, API_POLICY.encode())
        self.page_policy = (CSP, PAGE_POLICY.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                present = {name.lower(): value for name, value in raw}
                raw.extend(header for header in self.extra if header[0] not in present)
                if CSP not in present:
                    page = present.get(b"content-type", b"").startswith(b"text/html")
                    raw.append(self.page_policy if page else self.api_policy)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)
