"""The `web:fetch` and `web:links` tools: read a page's main text, or list its links."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pasar_core.errors import ToolError
from pasar_core.net.client import Fetched, Outgoing, send
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_web.content import Page, decode, extract_links, extract_page, kind_of, media_type, sniff
from pasar_web.limits import FETCH_DEFAULT_BYTES, LINKS_DEFAULT, LINKS_MAX, TOOL_TIMEOUT_S
from pasar_web.settings import TIMEOUT_FIELD, URL_FIELD, max_bytes_field, options_for

PAGE_ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"
NULLABLE_STRING = {"type": ["string", "null"]}


def _refuse_binary(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if kind_of(content_type) == "binary":
        raise ToolError(
            f"{response.request.url} is {media_type(content_type)}, a binary type; "
            "web:fetch and web:links read HTML and text",
            details={"content_type": media_type(content_type), "status": response.status_code},
        )


def _page_kind(fetched: Fetched) -> str:
    """html or text; binary bodies (by header or by their bytes) are refused."""
    if fetched.status >= 400:
        raise ToolError(
            f"GET {fetched.url} returned HTTP {fetched.status}",
            details={"status": fetched.status, "url": fetched.url},
        )
    kind = kind_of(fetched.content_type)
    sniffed = sniff(fetched.body)
    if sniffed == "binary":
        raise ToolError(
            f"{fetched.url} has binary content (NUL bytes) although it is labelled "
            f"{media_type(fetched.content_type) or 'with no content type'}",
            details={"content_type": media_type(fetched.content_type)},
        )
    return sniffed if kind == "unknown" else "html" if kind == "html" else "text"


async def fetch_page(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    options = options_for(ctx, args, default_bytes=FETCH_DEFAULT_BYTES)
    request = Outgoing("GET", args["url"], {"accept": PAGE_ACCEPT})
    fetched = await send(request, options, check_response=_refuse_binary)
    kind = _page_kind(fetched)
    if kind == "html":
        html = decode(fetched.body, fetched.content_type, html=True)
        page = await asyncio.to_thread(extract_page, html, fetched.url)
    else:
        page = Page(text=decode(fetched.body, fetched.content_type))
    return {
        "url": args["url"],
        "final_url": fetched.url,
        "status": fetched.status,
        "content_type": media_type(fetched.content_type) or None,
        "kind": kind,
        "title": page.title,
        "description": page.description,
        "author": page.author,
        "date": page.date,
        "site_name": page.site_name,
        "language": page.language,
        "text": page.text,
        "bytes": len(fetched.body),
        "truncated": fetched.truncated,
        "redirects": list(fetched.redirects),
    }


async def list_links(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    options = options_for(ctx, args, default_bytes=FETCH_DEFAULT_BYTES)
    request = Outgoing("GET", args["url"], {"accept": PAGE_ACCEPT})
    fetched = await send(request, options, check_response=_refuse_binary)
    if _page_kind(fetched) != "html":
        raise ToolError(
            f"{fetched.url} is {media_type(fetched.content_type) or 'not HTML'}, not an HTML page",
            details={"content_type": media_type(fetched.content_type)},
        )
    html = decode(fetched.body, fetched.content_type, html=True)
    links = await asyncio.to_thread(extract_links, html, fetched.url)
    if args.get("same_host_only", False):
        host = httpx.URL(fetched.url).host
        links = [link for link in links if httpx.URL(link.url).host == host]
    limit = int(args.get("limit", LINKS_DEFAULT))
    return {
        "url": args["url"],
        "final_url": fetched.url,
        "status": fetched.status,
        "links": [{"url": link.url, "text": link.text} for link in links[:limit]],
        "total": len(links),
        "truncated": fetched.truncated,
    }


_COMMON_INPUT: dict[str, Any] = {
    "url": URL_FIELD,
    "max_bytes": max_bytes_field(FETCH_DEFAULT_BYTES),
    "timeout_s": TIMEOUT_FIELD,
}

_FETCH_OUTPUT_FIELDS = (
    "url", "final_url", "status", "content_type", "kind", "title", "description", "author",
    "date", "site_name", "language", "text", "bytes", "truncated", "redirects",
)  # fmt: skip

WEB_FETCH = ToolSpec(
    id="web:fetch",
    title="Fetch a web page",
    description=(
        "Download a web page and return its readable main text (as Markdown, without menus, "
        "ads and footers) with its title, description and other metadata, the final URL after "
        "redirects, the HTTP status and content type. Plain-text pages come back as they are; "
        "binary files (PDF, images, archives) are refused. Only public addresses are reachable, "
        "plus hosts listed in this agent's web allow_hosts setting."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": _COMMON_INPUT,
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": list(_FETCH_OUTPUT_FIELDS),
        "properties": {
            "url": {"type": "string"},
            "final_url": {"type": "string"},
            "status": {"type": "integer"},
            "content_type": NULLABLE_STRING,
            "kind": {"enum": ["html", "text"]},
            "title": NULLABLE_STRING,
            "description": NULLABLE_STRING,
            "author": NULLABLE_STRING,
            "date": NULLABLE_STRING,
            "site_name": NULLABLE_STRING,
            "language": NULLABLE_STRING,
            "text": {"type": "string"},
            "bytes": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
            "redirects": {"type": "array", "items": {"type": "string"}},
        },
    },
    run=fetch_page,
    effect=Effect.READ,
    timeout_s=TOOL_TIMEOUT_S,
)

WEB_LINKS = ToolSpec(
    id="web:links",
    title="List a web page's links",
    description=(
        "Download an HTML page and list its links as absolute URLs with their text, in page "
        "order, each URL once. same_host_only keeps links to the page's own host; limit caps "
        "how many are returned (default 100, at most 1000) and total says how many there were."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            **_COMMON_INPUT,
            "same_host_only": {
                "type": "boolean",
                "default": False,
                "description": "Only links to the same host as the (final) page URL.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": LINKS_MAX,
                "default": LINKS_DEFAULT,
                "description": f"Return at most this many links (default {LINKS_DEFAULT}).",
            },
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url", "final_url", "status", "links", "total", "truncated"],
        "properties": {
            "url": {"type": "string"},
            "final_url": {"type": "string"},
            "status": {"type": "integer"},
            "links": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["url", "text"],
                    "properties": {"url": {"type": "string"}, "text": {"type": "string"}},
                },
            },
            "total": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
        },
    },
    run=list_links,
    effect=Effect.READ,
    timeout_s=TOOL_TIMEOUT_S,
)
