from __future__ import annotations

from pathlib import Path

import pasar_google_workspace
import pytest
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import OAuthCredentials, ToolContext
from pasar_google_workspace.testing import CLIENT_ID, RunningEmulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> Registry:
    return build_registry(build_plugin_manager(enabled=(), extra=[pasar_google_workspace]))


def context_with(running: RunningEmulator, tmp_path: Path, *scopes: str) -> ToolContext:
    """A ToolContext whose credentials are a token the emulator issued for `scopes`."""
    token = running.state.issue(CLIENT_ID, frozenset(scopes), with_refresh=False)
    credentials = OAuthCredentials(
        provider="google",
        access_token=token["access_token"],
        scopes=frozenset(scopes),
        api_base_url=running.url,
    )
    return ToolContext(user_id="u1", storage_root=tmp_path, oauth=credentials)


@pytest.fixture
def ctx(google_emulator: RunningEmulator, tmp_path: Path) -> ToolContext:
    """Credentials holding every scope the family's tools declare."""
    scopes = {s for t in pasar_google_workspace.GOOGLE_WORKSPACE.tools for s in t.scopes}
    return context_with(google_emulator, tmp_path, *scopes)
