"""`http:get` and `http:request` end to end against a local server reached through allow_hosts."""

from __future__ import annotations

import json

import pytest
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.registry import Registry

pytestmark = pytest.mark.anyio


async def test_get_parses_json_and_filters_headers(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke("http:get", ctx, {"url": server.url("/json")})
    assert result["status"] == 200
    assert result["body_type"] == "json"
    assert result["body"] == {"ok": True, "items": [1, 2, 3]}
    assert result["content_type"] == "application/json"
    assert "set-cookie" not in result["headers"]
    assert result["headers"]["content-type"] == "application/json"


async def test_get_sends_query_and_headers(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    args = {
        "url": server.url("/echo?a=1"),
        "query": {"b": "two", "n": 3, "flag": True, "many": ["x", "y"]},
        "headers": {"Authorization": "Bearer t0ken", "X-Api-Key": "k"},
    }
    echo = (await registry.invoke("http:get", ctx, args))["body"]
    assert echo["method"] == "GET"
    assert echo["path"].startswith("/echo?a=1&b=two&n=3&flag=true&many=x&many=y")
    assert echo["headers"]["authorization"] == "Bearer t0ken"
    assert echo["headers"]["x-api-key"] == "k"
    assert echo["headers"]["accept-encoding"] == "gzip, deflate"
    assert echo["headers"]["host"] == server.host


async def test_request_posts_json(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    args = {"method": "POST", "url": server.url("/echo"), "json": {"name": "Dewi", "n": [1, 2]}}
    result = await registry.invoke("http:request", ctx, args)
    echo = result["body"]
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"name": "Dewi", "n": [1, 2]}
    assert echo["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_request_methods(registry: Registry, server, ctx_for, method: str) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke(
        "http:request", ctx, {"method": method, "url": server.url("/echo")}
    )
    assert result["body"]["method"] == method


async def test_head_has_an_empty_body(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke(
        "http:request", ctx, {"method": "HEAD", "url": server.url("/json")}
    )
    assert (result["body_type"], result["body"], result["bytes"]) == ("empty", None, 0)


async def test_json_body_needs_a_body_method(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="JSON body needs"):
        await registry.invoke(
            "http:request", ctx, {"method": "GET", "url": server.url("/echo"), "json": {}}
        )
    with pytest.raises(ToolInputInvalid):
        await registry.invoke("http:get", ctx, {"url": server.url("/echo"), "json": {}})
    assert server.requests == []


@pytest.mark.parametrize(
    "header",
    [
        "Host",
        "host",
        "Connection",
        "Transfer-Encoding",
        "Content-Length",
        "Upgrade",
        "TE",
        "Proxy-Authorization",
        "Proxy-Foo",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Real-IP",
        "Metadata-Flavor",
        "X-aws-ec2-metadata-token",
        "X-HTTP-Method-Override",
        "Accept-Encoding",
        "Sec-Fetch-Site",
        "Bad Header",
        "Bad:Header",
    ],
)
async def test_refused_request_headers(registry: Registry, server, ctx_for, header: str) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="header"):
        await registry.invoke(
            "http:get", ctx, {"url": server.url("/echo"), "headers": {header: "x"}}
        )
    assert server.requests == []


@pytest.mark.parametrize("value", ["a\r\nInjected: yes", "a\nb", "nul\x00", "é"])
async def test_header_values_cannot_smuggle(
    registry: Registry, server, ctx_for, value: str
) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="printable ASCII"):
        await registry.invoke(
            "http:get", ctx, {"url": server.url("/echo"), "headers": {"X-A": value}}
        )
    assert server.requests == []


async def test_binary_bodies_are_not_returned(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke("http:get", ctx, {"url": server.url("/pdf")})
    assert result["body_type"] == "binary"
    assert result["body"] is None
    assert result["bytes"] > 0


async def test_cut_json_comes_back_as_text(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke("http:get", ctx, {"url": server.url("/json"), "max_bytes": 10})
    assert result["truncated"] is True
    assert result["body_type"] == "text"
    assert result["body"] == '{"ok": tru'


async def test_error_statuses_are_returned(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke("http:get", ctx, {"url": server.url("/status/503")})
    assert result["status"] == 503
    assert result["body"] == "status page"
