"""pytest fixtures (entry point `pytest11`): the Google emulator served over real HTTP on
127.0.0.1 in a thread, and pasar settings pointing the `google` OAuth client at it.

- `google_emulator`: a `RunningEmulator` (`url`, `state`) with fresh data per test.
- `google_settings`: `pasar_settings` with `PASAR_GOOGLE_*` pointing at `google_emulator`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from pasar_core.settings import OAuthClientSettings, Settings

from pasar_google_workspace.emulator import EmulatorState, build_emulator

CLIENT_ID = "pasar-test-client.apps.googleusercontent.com"
CLIENT_SECRET = "pasar-test-secret"  # noqa: S105 - the emulator's, not a real secret
PUBLIC_URL = "http://testserver"


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    url: str
    state: EmulatorState


@contextlib.contextmanager
def serve_emulator(
    state: EmulatorState | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningEmulator]:
    """Serve the emulator with uvicorn in a daemon thread for as long as the context lasts."""
    state = state or EmulatorState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        build_emulator(state), log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Google emulator did not start")
        time.sleep(0.01)
    try:
        yield RunningEmulator(url=f"http://{host}:{sock.getsockname()[1]}", state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def google_emulator() -> Iterator[RunningEmulator]:
    with serve_emulator(EmulatorState(clients={CLIENT_ID: CLIENT_SECRET})) as running:
        yield running


def emulator_client(running: RunningEmulator) -> OAuthClientSettings:
    return OAuthClientSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        auth_base_url=running.url,
        token_base_url=running.url,
        api_base_url=running.url,
    )


@pytest.fixture
def google_settings(pasar_settings: Settings, google_emulator: RunningEmulator) -> Settings:
    """`pasar_settings` whose Google OAuth client and APIs are the emulator."""
    clients = {**pasar_settings.oauth_clients, "google": emulator_client(google_emulator)}
    return pasar_settings.with_overrides(public_url=PUBLIC_URL, oauth_clients=clients)
