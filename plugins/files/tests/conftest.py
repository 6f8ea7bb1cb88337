from __future__ import annotations

from pathlib import Path

import pasar_files
import pytest
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import ToolContext


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> Registry:
    return build_registry(build_plugin_manager(enabled=(), extra=[pasar_files]))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A user's storage root that does not exist yet (the tools create it)."""
    return tmp_path / "users" / "u1"


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    return ToolContext(user_id="u1", storage_root=root)
