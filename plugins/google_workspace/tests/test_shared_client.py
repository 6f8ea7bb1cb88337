"""The HTTP client the plugin's `startup` shares between every user's Google calls keeps no
state from one call to the next: a cookie Google (or anything in between) sets for one user is
never sent with another user's request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pasar_google_workspace
import pytest
from pasar_core.specs import OAuthCredentials, ToolContext
from pasar_google_workspace.client import HTTP_CLIENT_EXTRA, call

pytestmark = pytest.mark.anyio


class CookieSetter(BaseHTTPRequestHandler):
    """Sets a session cookie on every answer and echoes the Cookie header it was sent."""

    def do_GET(self) -> None:
        body = ('{"cookie": "%s"}' % (self.headers.get("Cookie") or "")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"session={self.path.strip('/')}; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CookieSetter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def user_context(user: str, url: str, extras: dict[str, Any], tmp_path: Path) -> ToolContext:
    credentials = OAuthCredentials(
        provider="google", access_token=f"token-{user}", scopes=frozenset(), api_base_url=url
    )
    return ToolContext(user_id=user, storage_root=tmp_path, oauth=credentials, extras=extras)


async def test_a_cookie_set_for_one_user_never_reaches_another(
    server_url: str, tmp_path: Path
) -> None:
    services = SimpleNamespace(extras={})
    pasar_google_workspace.startup(services)  # type: ignore[arg-type]
    try:
        ana = user_context("ana", server_url, services.extras, tmp_path)
        bo = user_context("bo", server_url, services.extras, tmp_path)
        assert await call(ana, "GET", "", "/ana") == {"cookie": ""}  # answered with Set-Cookie
        assert await call(bo, "GET", "", "/bo") == {"cookie": ""}
        assert await call(ana, "GET", "", "/ana") == {"cookie": ""}
        assert not services.extras[HTTP_CLIENT_EXTRA].cookies
    finally:
        await pasar_google_workspace.shutdown(services)  # type: ignore[arg-type]
