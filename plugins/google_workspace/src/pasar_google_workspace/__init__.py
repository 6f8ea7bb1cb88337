"""pasar tool family `google_workspace`: Gmail, Docs, Sheets, Calendar and Drive tools, and
Google as an OAuth provider. `pasar_google_workspace.emulator` serves a local Google for tests
and offline use (`pasar dev google-emulator`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from pasar_core.hookspecs import hookimpl
from pasar_core.specs import AuthProviderSpec, ToolFamily

from pasar_google_workspace.client import HTTP_CLIENT_EXTRA, build_http_client
from pasar_google_workspace.docs import DOCS_APPEND, DOCS_CREATE, DOCS_READ
from pasar_google_workspace.drive import DRIVE_SEARCH
from pasar_google_workspace.gcalendar import CALENDAR_CREATE, CALENDAR_READ
from pasar_google_workspace.gmail import GMAIL_DRAFT, GMAIL_READ, GMAIL_SEND
from pasar_google_workspace.provider import GOOGLE
from pasar_google_workspace.sheets import SHEETS_LIST, SHEETS_READ, SHEETS_WRITE

if TYPE_CHECKING:
    import click
    from pasar_core.services import Services

try:
    __version__ = version("pasar-google-workspace")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0"

GOOGLE_WORKSPACE = ToolFamily(
    id="google_workspace",
    title="Google Workspace",
    description="Gmail, Google Docs, Sheets, Calendar and Drive, with the least Google scopes "
    "each action needs.",
    tools=(
        GMAIL_READ,
        GMAIL_DRAFT,
        GMAIL_SEND,
        DOCS_READ,
        DOCS_CREATE,
        DOCS_APPEND,
        SHEETS_READ,
        SHEETS_WRITE,
        SHEETS_LIST,
        CALENDAR_READ,
        CALENDAR_CREATE,
        DRIVE_SEARCH,
    ),
    version=__version__,
)


@hookimpl
def register_tool_families() -> list[ToolFamily]:
    """The `google_workspace` family."""
    return [GOOGLE_WORKSPACE]


@hookimpl
def register_auth_providers() -> list[AuthProviderSpec]:
    """Google: endpoints, scope hierarchy and risk classes."""
    return [GOOGLE]


@hookimpl
def startup(services: Services) -> None:
    """One HTTP client for every Google call of this process (connections kept alive)."""
    services.extras[HTTP_CLIENT_EXTRA] = build_http_client()


@hookimpl
async def shutdown(services: Services) -> None:
    """Close the client `startup` opened."""
    client = services.extras.pop(HTTP_CLIENT_EXTRA, None)
    if client is not None:
        await client.aclose()


@hookimpl
def register_commands(cli: click.Group) -> None:
    """`pasar dev google-emulator`."""
    from pasar_google_workspace.commands import add_commands

    add_commands(cli)


__all__ = [
    "GOOGLE",
    "GOOGLE_WORKSPACE",
    "register_auth_providers",
    "register_commands",
    "register_tool_families",
    "shutdown",
    "startup",
]
