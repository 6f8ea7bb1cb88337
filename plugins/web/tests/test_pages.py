"""`web:fetch` and `web:links` end to end against a local server reached through allow_hosts."""

from __future__ import annotations

import pytest
from pasar_core.errors import ToolError
from pasar_core.net.guard import TargetRefused
from pasar_core.registry import Registry

pytestmark = pytest.mark.anyio


async def test_fetch_extracts_main_text_and_metadata(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": server.url("/article")})
    assert page["status"] == 200
    assert page["kind"] == "html"
    assert page["content_type"] == "text/html"
    assert page["title"] == "Rice terraces of Bali"
    assert page["description"] == "How subak irrigation shares water between farms."
    assert page["author"] == "Made Wirawan"
    assert page["language"] == "en"
    assert "subak system is a cooperative way" in page["text"]
    assert "Tri Hita Karana" in page["text"]
    assert "About us" not in page["text"]  # navigation
    assert "boilerplate" not in page["text"]  # footer
    assert page["final_url"] == server.url("/article")
    assert page["truncated"] is False
    assert page["bytes"] > 500
    assert server.requests[0].headers["user-agent"].startswith("pasar-web/")


async def test_fetch_decodes_the_declared_charset(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": server.url("/latin1")})
    assert page["title"] == "Café"
    assert "Crème brûlée" in page["text"]


async def test_plain_text_passes_through(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": server.url("/plain")})
    assert page["kind"] == "text"
    assert page["text"] == "just text\nline two ✓\n"
    assert page["title"] is None


async def test_untyped_html_is_sniffed(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    page = await registry.invoke("web:fetch", ctx, {"url": server.url("/untyped")})
    assert page["kind"] == "html"
    assert page["title"] == "T"


@pytest.mark.parametrize(("path", "what"), [("/pdf", "application/pdf"), ("/png", "image/png")])
async def test_binary_content_types_are_refused(
    registry: Registry, server, ctx_for, path: str, what: str
) -> None:
    ctx = ctx_for(allow=[server.host])
    for tool in ("web:fetch", "web:links"):
        with pytest.raises(ToolError, match="binary") as error:
            await registry.invoke(tool, ctx, {"url": server.url(path)})
        assert error.value.details["content_type"] == what


async def test_text_with_nul_bytes_is_refused(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="binary content"):
        await registry.invoke("web:fetch", ctx, {"url": server.url("/nul")})


async def test_error_statuses_are_reported(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="HTTP 404") as error:
        await registry.invoke("web:fetch", ctx, {"url": server.url("/status/404")})
    assert error.value.details["status"] == 404


async def test_local_server_is_refused_without_allow_hosts(
    registry: Registry, server, ctx_for
) -> None:
    for allow in ([], ["127.0.0.1:1"], ["localhost"]):
        with pytest.raises(TargetRefused):
            await registry.invoke("web:fetch", ctx_for(allow=allow), {"url": server.url("/plain")})
    assert server.requests == []


async def test_allow_listed_host_without_port_opens_unprivileged_ports(
    registry: Registry, server, ctx_for
) -> None:
    page = await registry.invoke(
        "web:fetch", ctx_for(allow=["127.0.0.1"]), {"url": server.url("/plain")}
    )
    assert page["status"] == 200


async def test_localhost_through_the_system_resolver(registry: Registry, server, ctx_for) -> None:
    """The production resolver (getaddrinfo; /etc/hosts) for an allow-listed name."""
    ctx = ctx_for(allow=[f"localhost:{server.port}"])
    url = f"http://localhost:{server.port}/plain"
    page = await registry.invoke("web:fetch", ctx, {"url": url})
    assert page["text"].startswith("just text")
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


async def test_links_are_absolute_unique_and_labelled(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    result = await registry.invoke("web:links", ctx, {"url": server.url("/links")})
    base = server.url("")
    links = {link["url"]: link["text"] for link in result["links"]}
    assert links == {
        f"{base}/docs/intro.html": "Intro",
        f"{base}/about": "About us",
        "https://example.org/x": "Elsewhere",
        f"{base}/docs/": "Top",
        f"{base}/docs/guide.html": "The guide",
        "http://cdn.example.net/lib.js": "CDN",
    }
    assert result["total"] == 6
    assert result["links"][0]["url"] == f"{base}/docs/intro.html"


async def test_links_same_host_only_and_limit(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    args = {"url": server.url("/links"), "same_host_only": True, "limit": 2}
    result = await registry.invoke("web:links", ctx, args)
    assert result["total"] == 4
    assert len(result["links"]) == 2
    assert all(link["url"].startswith(server.url("")) for link in result["links"])


async def test_links_need_html(registry: Registry, server, ctx_for) -> None:
    ctx = ctx_for(allow=[server.host])
    with pytest.raises(ToolError, match="not an HTML page"):
        await registry.invoke("web:links", ctx, {"url": server.url("/plain")})
