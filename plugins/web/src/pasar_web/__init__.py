"""pasar tool family `web`: fetch and extract web pages, list links, call HTTP APIs.

Every connection goes through the SSRF guard (`pasar_core.net.guard`): only public addresses, plus the
hosts in the agent's `allow_hosts` setting, are reachable, and each connection is pinned to the
addresses the guard checked.
"""

from __future__ import annotations

from pasar_core.hookspecs import hookimpl
from pasar_core.net.guard import AllowList, TargetRefused, decide, guard
from pasar_core.net.resolver import RESOLVER_EXTRA, Resolver, SystemResolver
from pasar_core.specs import ToolFamily

from pasar_web.http_tools import HTTP_GET, HTTP_REQUEST
from pasar_web.page_tools import WEB_FETCH, WEB_LINKS
from pasar_web.settings import SETTINGS_SCHEMA, __version__

WEB = ToolFamily(
    id="web",
    title="Web",
    description=(
        "Read web pages (main text and metadata, or their links) and call HTTP APIs. Only public "
        "addresses are reachable, plus hosts listed in the agent's allow_hosts setting."
    ),
    tools=(WEB_FETCH, WEB_LINKS, HTTP_GET, HTTP_REQUEST),
    version=__version__,
    settings_schema=SETTINGS_SCHEMA,
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    """The `web` family: web:fetch, web:links, http:get, http:request."""
    return [WEB]


__all__ = [
    "RESOLVER_EXTRA",
    "WEB",
    "AllowList",
    "Resolver",
    "SystemResolver",
    "TargetRefused",
    "__version__",
    "decide",
    "guard",
    "register_tool_families",
]
