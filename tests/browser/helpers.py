"""What browser tests do through the REST API: sign up a user, create and run agents."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from pasar_core.testing import TEST_PASSWORD
from playwright.sync_api import Page


def sign_up(server: str) -> dict[str, str]:
    """A new user: their email and a fresh session (access and refresh tokens)."""
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert httpx.post(f"{server}/auth/signup", json=credentials).status_code == 201
    tokens = httpx.post(f"{server}/auth/token", json=credentials).json()
    return {"email": email, **tokens}


def bearer(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def store_session(page: Page, session: dict[str, str]) -> None:
    """Put the session where pasar's pages keep it (the dashboard's sign-in does the same)."""
    page.goto("/")
    page.evaluate(
        "session => sessionStorage.setItem('pasar.session', session)", json.dumps(session)
    )


def finished_run(server: str, session: dict[str, str]) -> dict[str, Any]:
    """An agent with no tools whose scripted model answers at once, run to its end."""
    config = {"model": "scripted", "model_options": {"script": [{"content": "hello"}]}}
    created = httpx.post(
        f"{server}/agents",
        json={"name": "browser", "tools": [], "config": config},
        headers=bearer(session),
    )
    assert created.status_code == 201, created.text
    run = httpx.post(
        f"{server}/agents/{created.json()['agent_id']}/execute",
        json={"input": "hi", "parameters": {"wait": True}},
        headers=bearer(session),
        timeout=60,
    )
    assert run.json()["status"] == "succeeded", run.text
    return dict(run.json())
