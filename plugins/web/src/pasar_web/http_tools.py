"""The `http:get` (read) and `http:request` (write) tools: call HTTP APIs behind the guard."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pasar_core.errors import ToolError
from pasar_core.net.client import Fetched, Outgoing, send, shown_headers
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_web.content import decode, kind_of, media_type, sniff
from pasar_web.limits import (
    HTTP_DEFAULT_BYTES,
    MAX_HEADER_VALUE_CHARS,
    MAX_JSON_BODY_BYTES,
    MAX_QUERY_PARAMS,
    MAX_REQUEST_HEADERS,
    MAX_RESPONSE_HEADERS,
    TOOL_TIMEOUT_S,
)
from pasar_web.settings import TIMEOUT_FIELD, URL_FIELD, max_bytes_field, options_for

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

REFUSED_REQUEST_HEADERS = frozenset(
    {
        # hop-by-hop and framing: the client owns the connection and the body's length
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "expect", "host", "accept-encoding",
        # proxies and client-address claims that internal services may trust
        "proxy-authorization", "proxy-authenticate", "proxy-connection", "forwarded", "via",
        "x-real-ip", "x-client-ip", "x-originating-ip", "true-client-ip", "cf-connecting-ip",
        "x-cluster-client-ip", "client-ip",
        # the proofs cloud metadata services demand, and method smuggling past http:get
        "metadata", "metadata-flavor", "x-google-metadata-request", "x-aws-ec2-metadata-token",
        "x-aws-ec2-metadata-token-ttl-seconds", "x-http-method-override", "x-http-method",
        "x-method-override",
    }
)  # fmt: skip
REFUSED_HEADER_PREFIXES = ("proxy-", "x-forwarded-", "sec-")
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "set-cookie", "set-cookie2", "connection", "keep-alive", "proxy-authenticate",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-encoding",
    }
)  # fmt: skip
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
MAX_SHOWN_HEADER_CHARS = 2000


def check_headers(headers: object) -> dict[str, str]:
    """Caller headers, lowercased; refuses hop-by-hop, Host, proxy and smuggling headers."""
    if headers is None:
        return {}
    if not isinstance(headers, dict) or len(headers) > MAX_REQUEST_HEADERS:
        raise ToolError(f"headers must be an object with at most {MAX_REQUEST_HEADERS} entries")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower()
        if not _TOKEN.fullmatch(key):
            raise ToolError(f"header name {str(name)[:100]!r} is not a valid HTTP token")
        if key in REFUSED_REQUEST_HEADERS or key.startswith(REFUSED_HEADER_PREFIXES):
            raise ToolError(
                f"header {key!r} may not be set: the client manages connections, hosts, "
                "proxies and encodings itself",
                details={"header": key},
            )
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE_CHARS:
            raise ToolError(f"header {key!r} must be a string of at most 8 KiB")
        if not _VALUE.fullmatch(value):
            raise ToolError(f"header {key!r} has characters other than printable ASCII")
        if key in checked:
            raise ToolError(f"header {key!r} is given twice")
        checked[key] = value.strip()
    return checked


def _with_query(url: str, query: object) -> str:
    if not query:
        return url
    if not isinstance(query, dict) or len(query) > MAX_QUERY_PARAMS:
        raise ToolError(f"query must be an object with at most {MAX_QUERY_PARAMS} entries")
    try:
        return str(httpx.URL(url).copy_merge_params(query))
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise ToolError(f"could not add the query to {url[:200]}: {error}") from None


def _body(fetched: Fetched) -> tuple[str, Any]:
    if not fetched.body:
        return "empty", None
    kind = kind_of(fetched.content_type)
    if kind == "binary" or sniff(fetched.body) == "binary":
        return "binary", None
    text = decode(fetched.body, fetched.content_type)
    if kind == "json" and not fetched.truncated:
        try:
            return "json", json.loads(text)
        except ValueError:
            pass
    return "text", text


async def call(method: str, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    options = options_for(ctx, args, default_bytes=HTTP_DEFAULT_BYTES)
    headers = check_headers(args.get("headers"))
    content: bytes | None = None
    if "json" in args:
        if method not in BODY_METHODS:
            raise ToolError(f"a JSON body needs POST, PUT, PATCH or DELETE, not {method}")
        content = json.dumps(args["json"], ensure_ascii=False, separators=(",", ":")).encode()
        if len(content) > MAX_JSON_BODY_BYTES:
            raise ToolError(f"the JSON body is {len(content)} bytes; the limit is 1 MiB")
        headers.setdefault("content-type", "application/json")
    url = _with_query(args["url"], args.get("query"))
    headers.setdefault("accept", "application/json, text/*;q=0.9, */*;q=0.5")
    fetched = await send(Outgoing(method, url, headers, content), options)
    body_type, body = _body(fetched)
    shown = shown_headers(
        fetched.headers, drop=DROPPED_RESPONSE_HEADERS, limit=MAX_RESPONSE_HEADERS
    )
    return {
        "url": url,
        "final_url": fetched.url,
        "status": fetched.status,
        "headers": {name: value[:MAX_SHOWN_HEADER_CHARS] for name, value in shown.items()},
        "content_type": media_type(fetched.content_type) or None,
        "body_type": body_type,
        "body": body,
        "bytes": len(fetched.body),
        "truncated": fetched.truncated,
        "redirects": list(fetched.redirects),
    }


async def http_get(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return await call("GET", ctx, args)


async def http_request(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return await call(args["method"], ctx, args)


_SCALAR = {"type": ["string", "number", "boolean"]}
HEADERS_FIELD: dict[str, Any] = {
    "type": "object",
    "maxProperties": MAX_REQUEST_HEADERS,
    "additionalProperties": {"type": "string", "maxLength": MAX_HEADER_VALUE_CHARS},
    "description": (
        "Request headers, e.g. Authorization or Accept. Host, hop-by-hop (Connection, "
        "Transfer-Encoding...), proxy, X-Forwarded-*, Accept-Encoding and method-override "
        "headers are refused. Only Accept, Accept-Language, User-Agent and Content-Type follow "
        "a redirect to another origin."
    ),
}
QUERY_FIELD: dict[str, Any] = {
    "type": "object",
    "maxProperties": MAX_QUERY_PARAMS,
    "additionalProperties": {
        "anyOf": [_SCALAR, {"type": "array", "items": _SCALAR, "maxItems": 100}]
    },
    "description": "Query parameters added to the URL (a list repeats the parameter).",
}
_OUTPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "url", "final_url", "status", "headers", "content_type", "body_type", "body", "bytes",
        "truncated", "redirects",
    ],
    "properties": {
        "url": {"type": "string"},
        "final_url": {"type": "string"},
        "status": {"type": "integer"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "content_type": {"type": ["string", "null"]},
        "body_type": {"enum": ["json", "text", "binary", "empty"]},
        "body": {},
        "bytes": {"type": "integer", "minimum": 0},
        "truncated": {"type": "boolean"},
        "redirects": {"type": "array", "items": {"type": "string"}},
    },
}  # fmt: skip
_RESPONSE_TEXT = (
    "Returns the status, response headers (cookies and hop-by-hop headers removed), and the "
    "body: parsed JSON when the response is JSON (and not cut), else text; binary bodies are "
    "not returned (body_type 'binary'). Follows up to 5 redirects. Only public addresses are "
    "reachable, plus hosts listed in this agent's web allow_hosts setting."
)

HTTP_GET = ToolSpec(
    id="http:get",
    title="HTTP GET",
    description="Send a GET request to an HTTP API or URL. " + _RESPONSE_TEXT,
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": URL_FIELD,
            "headers": HEADERS_FIELD,
            "query": QUERY_FIELD,
            "max_bytes": max_bytes_field(HTTP_DEFAULT_BYTES),
            "timeout_s": TIMEOUT_FIELD,
        },
    },
    output_schema=_OUTPUT,
    run=http_get,
    effect=Effect.READ,
    timeout_s=TOOL_TIMEOUT_S,
)

HTTP_REQUEST = ToolSpec(
    id="http:request",
    title="HTTP request",
    description=(
        "Send an HTTP request with any common method (POST, PUT, PATCH, DELETE...) and an "
        "optional JSON body to an HTTP API; it may change data on the remote side, so it counts "
        "as a write. Use http:get for plain reads. " + _RESPONSE_TEXT
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["method", "url"],
        "properties": {
            "method": {"enum": list(METHODS), "description": "The HTTP method."},
            "url": URL_FIELD,
            "headers": HEADERS_FIELD,
            "query": QUERY_FIELD,
            "json": {"description": "A JSON body (POST, PUT, PATCH, DELETE), at most 1 MiB."},
            "max_bytes": max_bytes_field(HTTP_DEFAULT_BYTES),
            "timeout_s": TIMEOUT_FIELD,
        },
    },
    output_schema=_OUTPUT,
    run=http_request,
    effect=Effect.WRITE,
    timeout_s=TOOL_TIMEOUT_S,
)
