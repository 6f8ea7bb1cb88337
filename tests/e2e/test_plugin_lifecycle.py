"""Plugins' `startup` and `shutdown` hooks in the processes that run agents: the server's
lifespan and `pasar worker`; the Google plugin owns its HTTP client this way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pasar_core import hookimpl
from pasar_core.errors import PluginStartupFailed
from pasar_core.plugins import build_plugin_manager
from pasar_core.settings import Settings
from pasar_google_workspace.client import HTTP_CLIENT_EXTRA
from starlette.testclient import TestClient

from pasar.app import create_app
from pasar.worker import runtime


class RefusesToStart:
    @hookimpl
    async def startup(self, services: Any) -> None:
        raise ConnectionRefusedError("the licence server is down")


def test_a_plugin_that_fails_to_start_stops_the_server_with_its_name(
    pasar_settings: Settings,
) -> None:
    pm = build_plugin_manager(enabled=("files",))
    pm.register(RefusesToStart(), name="licensed")
    with pytest.raises(PluginStartupFailed) as raised, TestClient(create_app(pasar_settings, pm)):
        raise AssertionError("the app must not serve")
    assert str(raised.value) == (
        "plugin 'licensed' failed to start: ConnectionRefusedError: the licence server is down"
    )


def test_the_server_starts_the_google_plugin_which_owns_one_client(
    pasar_settings: Settings,
) -> None:
    settings = pasar_settings.with_overrides(enabled_plugins=("google_workspace",))
    with TestClient(create_app(settings)) as client:
        shared = client.app_state["services"].extras[HTTP_CLIENT_EXTRA]
        assert isinstance(shared, httpx.AsyncClient)
        closed_while_serving = shared.is_closed
    assert closed_while_serving is False
    assert shared.is_closed  # the plugin's shutdown closed it
    assert HTTP_CLIENT_EXTRA not in client.app_state["services"].extras


def test_a_worker_starts_and_stops_the_plugins(pasar_settings: Settings) -> None:
    settings = pasar_settings.with_overrides(enabled_plugins=("google_workspace", "files"))

    async def work() -> tuple[httpx.AsyncClient, bool]:
        async with runtime(settings)(None) as runs:  # type: ignore[operator]
            shared = runs.services.extras[HTTP_CLIENT_EXTRA]
            return shared, shared.is_closed

    shared, closed_while_working = asyncio.run(work())
    assert closed_while_working is False
    assert shared.is_closed
