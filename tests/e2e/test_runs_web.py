"""Every web tool through an agent run with a scripted model, against local servers opened with
the agent's allow_hosts setting; SSRF probes through runs end as tool errors.

No test here sends anything anywhere but loopback: `outbound` (autouse) records and blocks every
socket connect or datagram to another address, and every name lookup that is not an IP literal
or localhost, and the test fails if there was one.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.e2e.runs import call, error, result, run_tools
from tests.support.servers import serve_in_thread

Headers = dict[str, str]

TOOLS = ["web:fetch", "web:links", "http:get", "http:request"]
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Harbour Tides Explained</title>
  <meta name="description" content="Why the harbour floods twice a day, and when it will not.">
  <meta name="author" content="Marta Quintela">
</head>
<body>
  <nav><a href="/">Home</a> <a href="/about">About us</a></nav>
  <article>
    <h1>Harbour Tides Explained</h1>
    <p>The harbour at Pasar Bay sees two high tides every lunar day, roughly twelve hours and
    twenty-five minutes apart, because the Moon pulls the ocean into two bulges.</p>
    <p>Spring tides follow the new and the full Moon, when Sun and Moon pull together; neap
    tides follow the quarter Moons. Read the <a href="/guides/tide-tables#today">tide table
    guide</a> or the <a href="https://tides.example.org/charts">chart archive</a>.</p>
    <p>Fishermen at the harbour plan their mornings around the ebb, when the channel is
    deepest near the breakwater and the current slackens for almost an hour.</p>
  </article>
  <footer><a href="/about">About us</a> <a href="mailto:harbour@example.org">Write</a></footer>
</body>
</html>
"""

ITEMS = [
    {"id": 1, "name": "anchor", "category": "gear"},
    {"id": 2, "name": "buoy", "category": "gear"},
    {"id": 3, "name": "sardines", "category": "food"},
]


@dataclass
class Site:
    """A local server, and what it received (method, path, query, headers, body)."""

    base: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.base.removeprefix("http://")

    @property
    def port(self) -> int:
        return int(self.host.rpartition(":")[2])


def site_app(seen: list[dict[str, Any]]) -> Starlette:
    async def record(request: Request) -> bytes:
        body = await request.body()
        seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": str(request.url.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return body

    async def page(request: Request) -> StarletteResponse:
        await record(request)
        return HTMLResponse(PAGE)

    async def plain(request: Request) -> StarletteResponse:
        await record(request)
        return PlainTextResponse("low tide 06:12\nhigh tide 12:31\n")

    async def items(request: Request) -> StarletteResponse:
        body = await record(request)
        if request.method == "POST":
            created = {"id": 4, **json.loads(body)}
            return JSONResponse(created, status_code=201, headers={"location": "/api/items/4"})
        category = request.query_params.get("category")
        chosen = [item for item in ITEMS if category in (None, item["category"])]
        return JSONResponse(
            {"items": chosen, "auth": request.headers.get("authorization")},
            headers={"x-total-count": str(len(chosen)), "set-cookie": "session=secret"},
        )

    async def item(request: Request) -> StarletteResponse:
        await record(request)
        if request.method == "DELETE":
            return StarletteResponse(status_code=204)
        return JSONResponse({"id": int(request.path_params["id"]), "updated": True})

    async def moved(request: Request) -> StarletteResponse:
        await record(request)
        return RedirectResponse("/api/items?category=food", status_code=302)

    async def elsewhere(request: Request) -> StarletteResponse:
        await record(request)
        return RedirectResponse(request.query_params["to"], status_code=302)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/tides", page),
            Route("/tides.txt", plain),
            Route("/api/items", items, methods=["GET", "POST"]),
            Route("/api/items/{id:int}", item, methods=["PUT", "PATCH", "DELETE"]),
            Route("/moved", moved),
            Route("/elsewhere", elsewhere),
        ]
    )


def _serve() -> Iterator[Site]:
    seen: list[dict[str, Any]] = []
    with serve_in_thread(site_app(seen)) as base:
        yield Site(base, seen)


@pytest.fixture
def site() -> Iterator[Site]:
    """The server the agent may reach (its host:port is in allow_hosts)."""
    yield from _serve()


@pytest.fixture
def unlisted() -> Iterator[Site]:
    """A second local server that no agent lists: it must never receive a request."""
    yield from _serve()


def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Outbound:
    """Attempts to reach something that is not loopback (blocked, then reported)."""

    attempts: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def outbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbound]:
    """Block and record traffic to anything but loopback; fail the test if there was any."""
    seen = Outbound()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def check(what: str, address: Any) -> None:
        if isinstance(address, tuple):
            if not _loopback(address[0]):
                seen.attempts.append(f"{what} {address!r}")
                raise OSError(f"blocked by the test: {what} to {address!r}")
            seen.connects.append((str(address[0]), int(address[1])))

    def connect(self: socket.socket, address: Any) -> None:
        check("connect", address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check("connect", address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check("sendto", args[-1])
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _loopback(name) and name != "localhost":
            seen.attempts.append(f"getaddrinfo {name!r}")
            raise socket.gaierror(socket.EAI_NONAME, "blocked by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield seen
    assert seen.attempts == [], "traffic to a non-loopback address"


def allowing(*hosts: str) -> dict[str, Any]:
    return {"tool_settings": {"web": {"allow_hosts": list(hosts)}}}


def test_web_fetch_reads_the_main_text_and_metadata(
    client: TestClient, make_user: Callable[..., Headers], site: Site, outbound: Outbound
) -> None:
    [page, text] = run_tools(
        client,
        make_user(),
        ["web:fetch"],
        call("web:fetch", url=f"{site.base}/tides"),
        call("web:fetch", url=f"{site.base}/tides.txt"),
        **allowing(site.host),
    )
    fetched = result(page)
    assert fetched["url"] == fetched["final_url"] == f"{site.base}/tides"
    assert (fetched["status"], fetched["content_type"], fetched["kind"]) == (
        200,
        "text/html",
        "html",
    )
    assert fetched["title"] == "Harbour Tides Explained"
    assert fetched["description"] == "Why the harbour floods twice a day, and when it will not."
    assert fetched["author"] == "Marta Quintela"
    assert fetched["language"] == "en"
    assert "two high tides every lunar day" in fetched["text"]
    assert "plan their mornings around the ebb" in fetched["text"]
    assert fetched["bytes"] == len(PAGE.encode())
    assert (fetched["truncated"], fetched["redirects"]) == (False, [])

    plain = result(text)
    assert (plain["kind"], plain["content_type"]) == ("text", "text/plain")
    assert plain["text"] == "low tide 06:12\nhigh tide 12:31\n"
    assert [r["path"] for r in site.requests] == ["/tides", "/tides.txt"]
    assert site.requests[0]["headers"]["user-agent"].startswith("pasar-web/")
    # The safety net really sees the tools' connections.
    assert ("127.0.0.1", site.port) in outbound.connects


def test_web_links_lists_absolute_links_in_page_order(
    client: TestClient, make_user: Callable[..., Headers], site: Site
) -> None:
    [every, own, first] = run_tools(
        client,
        make_user(),
        ["web:links"],
        call("web:links", url=f"{site.base}/tides"),
        call("web:links", url=f"{site.base}/tides", same_host_only=True),
        call("web:links", url=f"{site.base}/tides", limit=1),
        **allowing(site.host),
    )
    listed = result(every)
    assert listed["links"] == [
        {"url": f"{site.base}/", "text": "Home"},
        {"url": f"{site.base}/about", "text": "About us"},
        {"url": f"{site.base}/guides/tide-tables", "text": "tide table guide"},
        {"url": "https://tides.example.org/charts", "text": "chart archive"},
    ]
    assert (listed["total"], listed["status"], listed["truncated"]) == (4, 200, False)
    assert [link["url"] for link in result(own)["links"]] == [
        f"{site.base}/",
        f"{site.base}/about",
        f"{site.base}/guides/tide-tables",
    ]
    assert result(first)["links"] == listed["links"][:1]
    assert result(first)["total"] == 4
    # Listing links follows none of them: only the page itself was requested.
    assert [r["path"] for r in site.requests] == ["/tides"] * 3


def test_http_get_calls_a_json_api(
    client: TestClient, make_user: Callable[..., Headers], site: Site
) -> None:
    [listed, redirected] = run_tools(
        client,
        make_user(),
        ["http:get"],
        call(
            "http:get",
            url=f"{site.base}/api/items",
            query={"category": "gear"},
            headers={"Authorization": "Bearer t0k3n"},
        ),
        call("http:get", url=f"{site.base}/moved"),
        **allowing(site.host),
    )
    answer = result(listed)
    assert answer["url"] == f"{site.base}/api/items?category=gear"
    assert (answer["status"], answer["content_type"], answer["body_type"]) == (
        200,
        "application/json",
        "json",
    )
    assert answer["body"] == {"items": ITEMS[:2], "auth": "Bearer t0k3n"}
    assert answer["headers"]["x-total-count"] == "2"
    assert "set-cookie" not in answer["headers"]
    assert answer["truncated"] is False

    followed = result(redirected)
    assert followed["final_url"] == f"{site.base}/api/items?category=food"
    assert followed["redirects"] == [f"{site.base}/api/items?category=food"]
    assert followed["body"]["items"] == ITEMS[2:]
    assert [(r["method"], r["path"], r["query"]) for r in site.requests] == [
        ("GET", "/api/items", "category=gear"),
        ("GET", "/moved", ""),
        ("GET", "/api/items", "category=food"),
    ]


def test_http_request_posts_puts_and_deletes(
    client: TestClient, make_user: Callable[..., Headers], site: Site
) -> None:
    new_item = {"name": "net", "category": "gear", "tags": ["nylon", "µ-mesh"]}
    [posted, put, deleted] = run_tools(
        client,
        make_user(),
        ["http:request"],
        call(
            "http:request",
            method="POST",
            url=f"{site.base}/api/items",
            json=new_item,
            headers={"Authorization": "Bearer t0k3n", "X-Request-Id": "run-1"},
        ),
        call("http:request", method="PUT", url=f"{site.base}/api/items/4", json={"name": "nets"}),
        call("http:request", method="DELETE", url=f"{site.base}/api/items/4"),
        **allowing(site.host),
    )
    created = result(posted)
    assert (created["status"], created["body_type"]) == (201, "json")
    assert created["body"] == {"id": 4, **new_item}
    assert created["headers"]["location"] == "/api/items/4"
    assert result(put)["body"] == {"id": 4, "updated": True}
    gone = result(deleted)
    assert (gone["status"], gone["body_type"], gone["body"], gone["bytes"]) == (
        204,
        "empty",
        None,
        0,
    )
    post, put_request, delete = site.requests
    assert (post["method"], post["headers"]["content-type"]) == ("POST", "application/json")
    assert post["headers"]["authorization"] == "Bearer t0k3n"
    assert post["headers"]["x-request-id"] == "run-1"
    assert json.loads(post["body"]) == new_item
    assert (put_request["method"], put_request["body"]) == ("PUT", b'{"name":"nets"}')
    assert (delete["method"], delete["path"], delete["body"]) == ("DELETE", "/api/items/4", b"")


def test_ssrf_probes_through_a_run_are_tool_errors(
    client: TestClient,
    make_user: Callable[..., Headers],
    site: Site,
    unlisted: Site,
    outbound: Outbound,
) -> None:
    """With the allowed site listed, metadata, other local ports and encoded loopback forms are
    still refused before any connection is made."""
    probes = [
        call("http:get", url=METADATA),
        call("web:fetch", url="http://169.254.169.254/"),
        call("http:request", method="PUT", url="http://169.254.169.254/latest/api/token"),
        call("web:links", url="http://metadata.google.internal/computeMetadata/v1/"),
        call("http:get", url="http://[fd00:ec2::254]/latest/meta-data/"),
        call("http:get", url=f"{unlisted.base}/api/items"),
        call("web:fetch", url=f"http://localhost:{unlisted.port}/"),
        call("web:fetch", url=f"http://2130706433:{unlisted.port}/"),
        call("web:fetch", url=f"http://0x7f.0.0.1:{unlisted.port}/"),
        call("http:get", url=f"http://[::ffff:127.0.0.1]:{unlisted.port}/"),
        call("http:get", url="http://10.0.0.1/"),
        call("http:get", url="http://192.168.1.1/admin"),
        call("http:get", url=f"{site.base}/elsewhere?to={METADATA}"),
        call("http:get", url=f"{site.base}/elsewhere?to={unlisted.base}/api/items"),
        call("http:get", url=f"{site.base}/api/items"),  # the run goes on: the listed host works
    ]
    # Many calls in one run: max_steps above them.
    limits = {"max_steps": 100, "max_tool_calls": 100}
    steps = run_tools(client, make_user(), TOOLS, *probes, **allowing(site.host), limits=limits)
    *refused, allowed = steps
    for probe, step in zip(probes, refused, strict=False):
        message = error(step)
        assert message.startswith("WEB_TARGET_REFUSED: refused to connect to"), (probe, message)
    assert result(allowed)["status"] == 200
    assert unlisted.requests == []
    assert [r["path"] for r in site.requests] == ["/elsewhere", "/elsewhere", "/api/items"]
    assert {port for _, port in outbound.connects if port in (80, unlisted.port)} == set()


def test_local_servers_are_unreachable_without_allow_hosts(
    client: TestClient, make_user: Callable[..., Headers], site: Site
) -> None:
    steps = run_tools(
        client,
        make_user(),
        TOOLS,
        call("web:fetch", url=f"{site.base}/tides"),
        call("web:links", url=f"{site.base}/tides"),
        call("http:get", url=f"{site.base}/api/items"),
        call("http:request", method="POST", url=f"{site.base}/api/items", json={"name": "x"}),
    )
    for step in steps:
        assert error(step).startswith("WEB_TARGET_REFUSED: refused to connect to")
        assert "allow_hosts" in error(step)
    assert site.requests == []


def test_allow_hosts_never_opens_the_metadata_endpoint(
    client: TestClient, make_user: Callable[..., Headers]
) -> None:
    [step] = run_tools(
        client,
        make_user(),
        ["http:get"],
        call("http:get", url=METADATA),
        **allowing("169.254.169.254", "169.254.169.254:80"),
    )
    # Refused twice over: the operator's bound does not open it, and the guard never would
    # (plugins/web/tests cover the guard's own refusal of allow-listed metadata hosts).
    assert error(step).startswith("TOOL_ERROR")
    assert "PASAR_ALLOW_PRIVATE_HOSTS" in error(step)
