"""An HTTP custom tool's `run`: one request built from its template, sent behind the SSRF guard.

No Docker: the request goes from the calling process through `pasar_core.net` (every hop
resolved once, checked and pinned, redirects followed by hand, body and time capped). Only
public addresses are reachable, plus hosts in the tool's `network.allow_hosts` that the operator
also opens (`PASAR_ALLOW_PRIVATE_HOSTS`). Header values may name the agent's secrets
(`{secrets.name}`); their values are never logged or returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from pasar_core.custom_tools.definition import (
    ARG_PLACEHOLDER,
    SECRET_PLACEHOLDER,
    HttpImplementation,
)
from pasar_core.errors import CustomToolError, ToolError, ToolHttpStatus, ToolSecretMissing
from pasar_core.net.client import Options, Outgoing, send
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, AllowList
from pasar_core.net.resolver import resolver_for
from pasar_core.specs import ToolContext, ToolRun

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = "pasar-custom-tool/1"
JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json\b", re.IGNORECASE)
ERROR_BODY_CHARS = 500


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render_url(template: str, args: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name not in args or args[name] is None:
            raise ToolError(f"the argument {name!r} is needed to build the URL")
        return quote(_text(args[name]), safe="")

    return ARG_PLACEHOLDER.sub(fill, template)


def render_headers(headers: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    def fill(match: re.Match[str]) -> str:
        value = secrets.get(match[1])
        if value is None:
            raise ToolSecretMissing(
                f"the agent has no secret {match[1]!r}; set it with "
                f"PUT /agents/{{id}}/secrets/{match[1]}",
                details={"secret": match[1]},
            )
        return value

    rendered = {
        name.lower(): SECRET_PLACEHOLDER.sub(fill, value) for name, value in headers.items()
    }
    if any("\r" in value or "\n" in value for value in rendered.values()):
        raise ToolError("a secret used in a header contains a line break")
    return rendered


def _query(params: Mapping[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in params.items():
        items = value if isinstance(value, list) else [value]
        pairs.extend((name, _text(item)) for item in items if item is not None)
    return pairs


def _result(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", "replace")
    if JSON_TYPE.match(content_type) or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def http_run(
    tool_id: str, implementation: HttpImplementation, allow_hosts: list[str], timeout_s: float
) -> ToolRun:
    used = set(implementation.url_arguments())
    mode = implementation.body_mode()

    async def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
        bound = AllowList.parse(list(ctx.extras.get(ALLOW_BOUND_EXTRA, ()) or ()))
        allow = AllowList.parse(allow_hosts).within(bound)
        url = render_url(implementation.url, args)
        rest = {name: value for name, value in args.items() if name not in used}
        headers = render_headers(implementation.headers, ctx.secrets)
        content: bytes | None = None
        if mode == "json":
            content = json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode()
            headers.setdefault("content-type", "application/json")
        elif mode == "query" and rest:
            url = str(httpx.URL(url).copy_merge_params(_query(rest)))
        headers.setdefault("accept", "application/json, text/*;q=0.9")
        options = Options(
            allow=allow,
            resolver=resolver_for(ctx),
            max_bytes=MAX_RESPONSE_BYTES,
            timeout_s=timeout_s,
            user_agent=USER_AGENT,
        )
        fetched = await send(Outgoing(implementation.method, url, headers, content), options)
        if fetched.truncated:
            raise CustomToolError(
                f"{tool_id}: the response is larger than {MAX_RESPONSE_BYTES} bytes",
                details={"tool": tool_id, "max_bytes": MAX_RESPONSE_BYTES},
            )
        if fetched.status >= 400:
            body = fetched.body.decode("utf-8", "replace")[:ERROR_BODY_CHARS]
            raise ToolHttpStatus(
                f"{tool_id}: the API answered {fetched.status}",
                details={"tool": tool_id, "status": fetched.status, "body": body},
            )
        return _result(fetched.body, fetched.content_type)

    return run
