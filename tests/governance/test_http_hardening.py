"""Security headers on every answer (pages load this server's files only), HSTS only when
configured, CORS off unless origins are configured, and strict JSON content types."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.settings import Settings
from starlette.testclient import TestClient
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

import pasar
from pasar.app import create_app

ORIGIN = "https://app.example.com"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_every_answer_carries_the_headers(client: TestClient, make_user) -> None:
    for response in (client.get("/healthz"), client.get("/agents"),
                     client.post("/graphql", json={"query": "{ __typename }"})):  # fmt: skip
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "Strict-Transport-Security" not in response.headers
        assert "Access-Control-Allow-Origin" not in response.headers


PAGES = ("/", "/graphql", "/docs")


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_this_servers_files(client: TestClient, path: str) -> None:
    page = client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-cache"  # it names the current static digest
    assert page.headers["content-type"].startswith("text/html")
    policy = directives(page.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no other origin
    assert policy["connect-src"] == ["'self'"]  # queries and websockets go to this server only
    if path == "/":  # pasar's own code: no inline style either
        assert policy["style-src"] == ["'self'"]
    for directive, values in policy.items():
        assert all(v.startswith("'") or v == "data:" for v in values), (directive, values)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "an inline script"
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls, page.text[:500]
    for url in urls:
        assert url.startswith(("/static/", "data:")), url
        if url.startswith("/static/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_static_files_need_the_current_digest(client: TestClient) -> None:
    page = client.get("/docs").text
    url = re.findall(r'src="(/static/[^"]+)"', page)[0]
    digest = url.split("/")[2]
    assert client.get(url.replace(digest, "0" * len(digest))).status_code == 404
    assert client.get(url.replace(digest + "/", "")).status_code == 404
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(url):
        pass  # a websocket to a static file is closed, not an error


def raw_get(client: TestClient, raw_path: bytes) -> tuple[int, dict[bytes, bytes]]:
    """GET `raw_path` as a server would hand it to the app: `path` is the percent-decoded
    `raw_path`, and nothing normalises `..` or `//` on the way (an HTTP client would)."""
    sent: list[Message] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return incoming.pop() if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": unquote(raw_path.decode()), "raw_path": raw_path,
        "root_path": "", "query_string": b"", "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "state": dict(client.app_state),
    }  # fmt: skip
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), dict(start.get("headers", []))


def test_static_paths_never_leave_the_static_directory(client: TestClient) -> None:
    page = client.get("/docs").text
    url = re.findall(r'src="(/static/[^"]+)"', page)[0]
    digest = url.split("/")[2]
    status, _ = raw_get(client, url.encode())
    assert status == 200  # the raw request reaches the files (the ones below are refused)
    assert (Path(pasar.__file__).parent / "pages.py").is_file()  # what `..` would reach
    for raw in (f"/static/{digest}/../pages.py", f"/static/{digest}/..%2fpages.py",
                f"/static/{digest}/..%2F..%2Fpasar%2Fpages.py",
                f"/static/{digest}/%2e%2e/%2e%2e/pasar/pages.py",
                f"/static/{digest}/vendor/../../pages.py", f"/static/{digest}//etc/passwd",
                f"/static/{digest}/..\\pages.py", "/static/../pages.py", "//etc/passwd"):  # fmt: skip
        status, headers = raw_get(client, raw.encode())
        assert status == 404, raw
        assert b"cache-control" not in headers or b"immutable" not in headers[b"cache-control"]


def test_the_vendored_assets_are_what_the_script_pinned() -> None:
    root = Path(__file__).resolve().parents[2]
    checked = subprocess.run(
        [sys.executable, root / "scripts" / "vendor-assets", "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # and git keeps every one of the pages' files (an ignored one is missing from a clone)
    ignored = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "src/pasar/static"],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if ignored.returncode != 0:
        pytest.skip(f"not a git checkout: {ignored.stderr.strip()}")
    assert ignored.stdout == ""


def test_own_policies_are_kept_and_hsts_when_configured(pasar_settings: Settings) -> None:
    settings = pasar_settings.with_overrides(hsts_max_age_s=31_536_000)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/healthz")
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        consent = client.get("/auth/google/start", params={"state": "x"})
        assert "style-src 'unsafe-inline'" in consent.headers["Content-Security-Policy"]


def test_cors_is_off_by_default_and_limited_to_configured_origins(
    client: TestClient, pasar_settings: Settings
) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
    refused = client.options("/agents", headers=preflight)
    assert "Access-Control-Allow-Origin" not in refused.headers
    settings = pasar_settings.with_overrides(cors_origins=(ORIGIN,))
    with TestClient(create_app(settings)) as cors_client:
        allowed = cors_client.options("/agents", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
        simple = cors_client.get("/healthz", headers={"Origin": ORIGIN})
        assert simple.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Retry-After" in simple.headers["Access-Control-Expose-Headers"]
        other = cors_client.options(
            "/agents", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.status_code == 400
        assert "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Credentials" not in allowed.headers


def test_bodies_that_are_not_json_are_415_everywhere(client: TestClient, make_user) -> None:
    headers = make_user()
    for method, path in (("POST", "/agents"), ("PUT", "/agents/x"),
                         ("POST", "/executions/x/cancel"), ("POST", "/auth/logout")):  # fmt: skip
        answer = client.request(method, path, content=b"name=x",
                                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert answer.status_code == 415, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    # No body: the route answers as before (here: not found).
    assert client.post("/executions/x/cancel", headers=headers).status_code == 404
    ok = client.post("/agents", content=b'{"name": "a", "tools": []}',
                     headers={**headers, "Content-Type": "Application/JSON; charset=utf-8"})  # fmt: skip
    assert ok.status_code == 201, ok.text
    # GraphQL keeps its own transports.
    graphql = client.post("/graphql", content=b"{ __typename }",
                          headers={"Content-Type": "application/graphql"})  # fmt: skip
    assert "error" not in graphql.json()  # answered by GraphQL, in its own shape


def test_hostile_content_types_are_typed(client: TestClient, make_user) -> None:
    headers = make_user()

    @settings(max_examples=50, deadline=None)
    @given(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        st.binary(min_size=1, max_size=50),
    )
    def check(content_type: str, body: bytes) -> None:
        answer = client.post("/agents", content=body,
                             headers={**headers, "Content-Type": content_type})  # fmt: skip
        assert answer.status_code in (400, 415, 422), answer.text
        assert answer.json()["error"]["code"]

    check()
