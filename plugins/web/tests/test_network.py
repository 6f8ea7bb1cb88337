"""Redirects, DNS rebinding, pinning (Host and TLS SNI), size and time caps."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from pasar_core.errors import ToolError
from pasar_core.net.guard import TargetRefused
from pasar_core.registry import Registry

PUBLIC = "93.184.215.14"  # answered by the test DNS server; dialling it is intercepted


def redirect(server, to: str, status: int = 302) -> str:
    return server.url(f"/redirect?status={status}&to={quote(to, safe='')}")


@pytest.mark.anyio
async def test_redirect_chain_is_followed(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": server.url("/chain/5")})
    assert page["final_url"] == server.url("/chain/0")
    assert page["redirects"] == [server.url(f"/chain/{n}") for n in (4, 3, 2, 1, 0)]
    assert page["title"] == "Rice terraces of Bali"


@pytest.mark.anyio
async def test_more_than_five_redirects_are_refused(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="more than 5 redirects"):
        await registry.invoke("web:fetch", ctx, {"url": server.url("/chain/6")})
    assert len(server.requests) == 6


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
        "http://127.0.0.1:22/",
        "http://loopback.test/",
        "http://v6ula.test/",
        "http://localhost/",
        "ftp://example.com/",
        "gopher://127.0.0.1:6379/_",
        "file:///etc/passwd",
    ],
)
@pytest.mark.anyio
async def test_redirect_to_a_forbidden_target_is_refused_before_connecting(
    registry: Registry, server, ctx_for, dns, record_connect, target: str
) -> None:
    ctx = ctx_for(allow=[server.host], resolver=dns.resolver)
    for tool in ("web:fetch", "http:get"):
        with pytest.raises(TargetRefused):
            await registry.invoke(tool, ctx, {"url": redirect(server, target)})
    assert record_connect.calls == [("127.0.0.1", server.port)] * 2


@pytest.mark.anyio
async def test_redirect_to_a_loopback_port_not_allow_listed(
    registry: Registry, server, other_server, ctx_for, record_connect
) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(TargetRefused):
        await registry.invoke(
            "web:fetch", ctx, {"url": redirect(server, other_server.url("/plain"))}
        )
    assert other_server.requests == []
    assert record_connect.calls == [("127.0.0.1", server.port)]


@pytest.mark.anyio
async def test_relative_and_protocol_relative_redirects(
    registry: Registry, server, ctx_for
) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": redirect(server, "/plain")})
    assert page["final_url"] == server.url("/plain")
    page = await registry.invoke(
        "web:fetch", ctx, {"url": redirect(server, f"//{server.host}/plain")}
    )
    assert page["final_url"] == server.url("/plain")


@pytest.mark.anyio
async def test_post_redirects_keep_or_drop_the_body_like_browsers(
    registry: Registry, server, ctx_for
) -> None:
    ctx = ctx_for(allow=[server.host])
    args = {"method": "POST", "json": {"a": 1}, "url": redirect(server, "/echo", 307)}
    echo = (await registry.invoke("http:request", ctx, args))["body"]
    assert (echo["method"], echo["body"]) == ("POST", '{"a":1}')
    args["url"] = redirect(server, "/echo", 303)
    echo = (await registry.invoke("http:request", ctx, args))["body"]
    assert (echo["method"], echo["body"]) == ("GET", "")
    assert "content-type" not in echo["headers"]


@pytest.mark.anyio
async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    registry: Registry, server, other_server, ctx_for
) -> None:
    ctx = ctx_for(allow=[server.host, other_server.host])
    headers = {"Authorization": "Bearer secret", "Cookie": "s=1", "X-Api-Key": "k", "Accept": "a/b"}
    args = {"url": redirect(server, other_server.url("/echo")), "headers": headers}
    echo = (await registry.invoke("http:get", ctx, args))["body"]
    assert "authorization" not in echo["headers"]
    assert "cookie" not in echo["headers"]
    assert "x-api-key" not in echo["headers"]
    assert echo["headers"]["accept"] == "a/b"
    same = await registry.invoke(
        "http:get", ctx, {"url": redirect(server, "/echo"), "headers": headers}
    )
    assert same["body"]["headers"]["authorization"] == "Bearer secret"


@pytest.mark.anyio
async def test_connection_is_pinned_to_the_checked_address(
    registry: Registry, server, ctx_for, dns, record_connect
) -> None:
    """A name is dialled at the address the guard checked, with its own name as Host."""
    ctx = ctx_for(allow=[f"pinned.test:{server.port}"], resolver=dns.resolver)
    url = f"http://pinned.test:{server.port}/echo"
    echo = (await registry.invoke("http:get", ctx, {"url": url}))["body"]
    assert echo["headers"]["host"] == f"pinned.test:{server.port}"
    assert record_connect.calls == [("127.0.0.1", server.port)]
    assert dns.zone.count("pinned.test") == 1


@pytest.mark.anyio
async def test_dns_rebinding_cannot_move_the_connection(
    registry: Registry, server, ctx_for, dns, record_connect
) -> None:
    """The resolver says public first and loopback afterwards; only the checked address is dialled."""
    dns.zone.rounds["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    ctx = ctx_for(resolver=dns.resolver)
    with pytest.raises(ToolError, match="failed"):
        await registry.invoke("web:fetch", ctx, {"url": f"http://rebind.test:{server.port}/plain"})
    assert record_connect.calls == [(PUBLIC, server.port)]  # intercepted: never sent
    assert dns.zone.count("rebind.test") == 1  # one lookup: nothing resolves the name again
    assert server.requests == []


@pytest.mark.anyio
async def test_rebinding_across_a_redirect_is_checked_again(
    registry: Registry, server, ctx_for, dns, record_connect
) -> None:
    """Every hop resolves afresh and is checked: the second answer (loopback) is refused."""
    dns.zone.rounds["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    assert await dns.resolver.resolve("rebind.test", 80) == [PUBLIC]  # the first answer is used up
    ctx = ctx_for(allow=[server.host], resolver=dns.resolver)
    with pytest.raises(TargetRefused, match="loopback"):
        await registry.invoke(
            "web:fetch", ctx, {"url": redirect(server, f"http://rebind.test:{server.port}/plain")}
        )
    assert record_connect.calls == [("127.0.0.1", server.port)]
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_https_keeps_the_name_for_sni_and_certificate(
    registry: Registry, tls_server, ctx_for, dns, record_connect
) -> None:
    server = tls_server.server
    extras = {"web.ssl_context": tls_server.client_context}
    ctx = ctx_for(allow=[f"pinned.test:{server.port}"], resolver=dns.resolver, extras=extras)
    page = await registry.invoke(
        "web:fetch", ctx, {"url": f"https://pinned.test:{server.port}/plain"}
    )
    assert page["text"].startswith("just text")
    assert record_connect.calls == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["host"] == f"pinned.test:{server.port}"
    # the certificate names pinned.test, not 127.0.0.1: dialling by IP literal fails verification
    ctx = ctx_for(allow=[server.host], extras=extras)
    with pytest.raises(ToolError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await registry.invoke("web:fetch", ctx, {"url": server.url("/plain")})


@pytest.mark.anyio
async def test_huge_responses_are_capped(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke(
        "web:fetch", ctx, {"url": server.url("/huge"), "max_bytes": 100_000}
    )
    assert page["truncated"] is True
    assert page["bytes"] == 100_000
    assert len(page["text"]) == 100_000
    result = await registry.invoke("http:get", ctx, {"url": server.url("/huge")})
    assert (result["truncated"], result["bytes"]) == (True, 1024 * 1024)
    # The reads stopped at the cap: the client hung up on both 64 MiB bodies, which the server
    # had only partly written (the cap plus what socket buffers hold).
    ends = server.stream_ends(2)
    assert [(end.path, end.client_hung_up) for end in ends] == [("/huge", True)] * 2
    assert all(end.written < 16 * 1024 * 1024 for end in ends), ends


@pytest.mark.anyio
async def test_slow_responses_time_out(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match=r"did not finish within 0\.5 s|timed out"):
        await registry.invoke("web:fetch", ctx, {"url": server.url("/slow?s=10"), "timeout_s": 0.5})
    # The request reached the server, whose answer was ten seconds away: the timeout ended it.
    assert [seen.path for seen in server.requests] == ["/slow?s=10"]


@pytest.mark.anyio
async def test_a_trickling_body_hits_the_total_time_cap(
    registry: Registry, server, ctx_for
) -> None:
    """Each byte arrives well within the read timeout; the total cap still ends the call."""
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="did not finish within 1 s"):
        await registry.invoke("http:get", ctx, {"url": server.url("/trickle"), "timeout_s": 1})
    # The client hung up mid-body: the server had written only part of its 200 bytes.
    [end] = server.stream_ends(1)
    assert (end.path, end.client_hung_up) == ("/trickle", True)
    assert end.written < 200


@pytest.mark.anyio
async def test_unresolvable_names_are_tool_errors(
    registry: Registry, ctx_for, dns, no_connect
) -> None:
    ctx = ctx_for(resolver=dns.resolver)
    with pytest.raises(ToolError, match=r"could not resolve nowhere\.test"):
        await registry.invoke("web:fetch", ctx, {"url": "http://nowhere.test/"})
    assert no_connect.calls == []


def test_the_loopback_only_safety_net_is_on() -> None:
    import socket

    with socket.socket() as sock, pytest.raises(AssertionError, match="non-loopback"):
        sock.connect(("192.0.2.1", 80))  # a documentation address: never actually dialled


@pytest.mark.anyio
async def test_ipv6_loopback_through_allow_hosts(
    registry: Registry, server6, ctx_for, dns, record_connect
) -> None:
    ctx = ctx_for(allow=[server6.host, f"v6loopback.test:{server6.port}"], resolver=dns.resolver)
    page = await registry.invoke("web:fetch", ctx, {"url": server6.url("/plain")})
    assert page["text"].startswith("just text")
    url = f"http://v6loopback.test:{server6.port}/echo"
    echo = (await registry.invoke("http:get", ctx, {"url": url}))["body"]
    assert echo["headers"]["host"] == f"v6loopback.test:{server6.port}"
    assert record_connect.calls == [("::1", server6.port)] * 2
    with pytest.raises(TargetRefused):
        await registry.invoke(
            "web:fetch", ctx_for(resolver=dns.resolver), {"url": server6.url("/")}
        )
