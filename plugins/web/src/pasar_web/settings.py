"""The family's per-agent settings, shared schema fields, and per-call HTTP options."""

from __future__ import annotations

import ssl
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pasar_core.net.client import Options
from pasar_core.net.guard import ALLOW_BOUND_EXTRA, AllowList
from pasar_core.net.resolver import resolver_for
from pasar_core.specs import ToolContext

from pasar_web.limits import (
    DEFAULT_TIMEOUT_S,
    MAX_ALLOW_HOSTS,
    MAX_BYTES,
    MAX_TIMEOUT_S,
    MAX_URL_CHARS,
)

try:
    __version__ = version("pasar-web")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0"

USER_AGENT = f"pasar-web/{__version__}"
SSL_CONTEXT_EXTRA = "web.ssl_context"
"""`ctx.extras` key of an `ssl.SSLContext` for deployments with their own CA bundle."""

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "allow_hosts": {
            "type": "array",
            "maxItems": MAX_ALLOW_HOSTS,
            "uniqueItems": True,
            "description": (
                "Hosts this agent may reach even though they resolve to loopback or private "
                "addresses: 'host' (ports 80, 443 and 1024 up) or 'host:port' (that port); "
                "IPv6 as '[::1]:8080'. Cloud metadata endpoints stay unreachable."
            ),
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": 262,
                "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/@?#\[\]]+)(:[0-9]{1,5})?$",
            },
        }
    },
}

URL_FIELD: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL_CHARS,
    "description": "An absolute http:// or https:// URL.",
}


def max_bytes_field(default: int) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_BYTES,
        "default": default,
        "description": (
            f"Read at most this many bytes of the response body (default {default // 1024} KiB, "
            f"at most {MAX_BYTES // (1024 * 1024)} MiB); the rest is cut and truncated is true."
        ),
    }


TIMEOUT_FIELD: dict[str, Any] = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": MAX_TIMEOUT_S,
    "default": DEFAULT_TIMEOUT_S,
    "description": (
        f"Give up after this many seconds in all, redirects included (default "
        f"{DEFAULT_TIMEOUT_S:g}, at most {MAX_TIMEOUT_S:g})."
    ),
}


def options_for(ctx: ToolContext, args: dict[str, Any], *, default_bytes: int) -> Options:
    """The bounds of one call: the agent's allow-list, the resolver, byte and time caps."""
    allow = AllowList.from_settings(ctx.settings)
    bound = ctx.extras.get(ALLOW_BOUND_EXTRA)
    if bound is not None:
        allow = allow.within(AllowList.parse(list(bound)))
    return Options(
        allow=allow,
        resolver=resolver_for(ctx),
        max_bytes=int(args.get("max_bytes", default_bytes)),
        timeout_s=float(args.get("timeout_s", DEFAULT_TIMEOUT_S)),
        user_agent=USER_AGENT,
        ssl_context=_ssl_context(ctx),
    )


def _ssl_context(ctx: ToolContext) -> ssl.SSLContext | None:
    context = ctx.extras.get(SSL_CONTEXT_EXTRA)
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise TypeError(f"ctx.extras[{SSL_CONTEXT_EXTRA!r}] is not an ssl.SSLContext")
    return context
