"""pasar's browser pages: the dashboard (`/`), the GraphQL playground (GraphiQL, at `/graphql`
for browsers) and the REST API docs (Swagger UI, `/docs`). Each page is a small HTML shell
whose scripts and styles come from `/static/<digest>/` (pasar.static_assets); nothing is
loaded from another origin."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from pasar.security_headers import DASHBOARD_POLICY
from pasar.static_assets import StaticAssets

TEMPLATES = Path(__file__).with_name("templates")
# The shell is small and names the current digest: browsers revalidate it each time.
PAGE_HEADERS = {"Cache-Control": "no-cache"}


class Pages:
    """The pages rendered once per app, with the URLs of its static files."""

    def __init__(self, assets: StaticAssets | None = None) -> None:
        self.assets = assets or StaticAssets()
        self.graphiql_html = self._render("graphiql.html")
        self.docs_html = self._render("docs.html")
        self.dashboard_html = self._render("dashboard.html")

    def _render(self, name: str) -> str:
        static = self.assets.url("").rstrip("/")
        text = (TEMPLATES / name).read_text()
        return text.replace("{vendor}", f"{static}/vendor").replace("{static}", static)

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(self.docs_html, headers=PAGE_HEADERS)

    async def dashboard(self, request: Request) -> Response:
        headers = {**PAGE_HEADERS, "Content-Security-Policy": DASHBOARD_POLICY}
        return HTMLResponse(self.dashboard_html, headers=headers)

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.dashboard, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
            Mount("/static", app=self.assets),
        ]
