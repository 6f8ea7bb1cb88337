"""Attacking POST /auth/token: concurrent guesses are counted before any password is checked, a
stranger cannot lock the owner out, and X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pasar_core.accounts import passwords
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.peers import from_peer, peers_from_header

OWNER = "owner@example.com"
WRONG = {"email": OWNER, "password": "not the password"}
RIGHT = {"email": OWNER, "password": TEST_PASSWORD}


class Verifications:
    """Counts argon2 verifications and notes whether each ran off the event loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.on_event_loop = 0
        self._lock = threading.Lock()
        real = passwords._verify

        def counted(password_hash: str, password: str) -> bool:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            with self._lock:
                self.count += 1
                self.on_event_loop += on_loop
            return real(password_hash, password)

        monkeypatch.setattr(passwords, "_verify", counted)


@contextlib.contextmanager
def behind_network(settings: Settings, *, sign_up: bool = True) -> Iterator[TestClient]:
    """The app behind a network that delivers requests from the peer each test names."""
    app = peers_from_header(create_app(settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        if sign_up:
            assert client.post("/auth/signup", json=RIGHT).status_code == 201
        yield client


@pytest.fixture
def peers(pasar_settings: Settings) -> Iterator[TestClient]:
    """With the default budgets."""
    with behind_network(pasar_settings) as client:
        yield client


@pytest.fixture
def small_budgets(pasar_settings: Settings) -> Iterator[TestClient]:
    """Budgets of 3 per (email, address) and 6 per account (each guess costs an argon2 check)."""
    small = pasar_settings.with_overrides(login_failures_per_pair=3, login_failures_per_account=6)
    with behind_network(small) as client:
        yield client


def test_forty_concurrent_guesses_check_at_most_the_budget(
    peers: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifications = Verifications(monkeypatch)
    attacker = from_peer("198.51.100.7")
    with ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(
            pool.map(lambda _: peers.post("/auth/token", json=WRONG, headers=attacker), range(40))
        )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: 10, 429: 30}
    assert verifications.count == 10  # the other 30 were refused without hashing
    assert verifications.on_event_loop == 0  # argon2 runs in a worker thread
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "RATE_LIMITED"
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error"]["details"]["retry_after_s"] == int(
                response.headers["retry-after"]
            )


def test_a_stranger_cannot_lock_the_owner_out(
    small_budgets: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers = small_budgets
    home = from_peer("192.0.2.10")
    assert peers.post("/auth/token", json=RIGHT, headers=home).status_code == 200

    verifications = Verifications(monkeypatch)
    statuses: Counter[int] = Counter()
    for index in range(4):  # 4 addresses x 5 guesses: per address and per account budgets
        stranger = from_peer(f"203.0.113.{index + 1}")
        for _ in range(5):
            statuses[peers.post("/auth/token", json=WRONG, headers=stranger).status_code] += 1
    assert statuses == {401: 6, 429: 14}
    assert verifications.count == 6

    # The account is in back-off for addresses it has never logged in from ...
    newcomer = peers.post("/auth/token", json=RIGHT, headers=from_peer("192.0.2.99"))
    assert newcomer.status_code == 429
    # ... but the owner, from where they logged in before, is not locked out.
    owner = peers.post("/auth/token", json=RIGHT, headers=home)
    assert owner.status_code == 200, owner.text
    token = owner.json()["access_token"]
    assert peers.get("/agents", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_owners_typos_lock_only_that_address_and_a_success_resets_them(
    small_budgets: TestClient,
) -> None:
    peers, home = small_budgets, from_peer("192.0.2.10")
    for _ in range(2):
        assert peers.post("/auth/token", json=WRONG, headers=home).status_code == 401
    assert peers.post("/auth/token", json=RIGHT, headers=home).status_code == 200
    for _ in range(3):
        assert peers.post("/auth/token", json=WRONG, headers=home).status_code == 401
    assert peers.post("/auth/token", json=RIGHT, headers=home).status_code == 429
    elsewhere = peers.post("/auth/token", json=RIGHT, headers=from_peer("192.0.2.11"))
    assert elsewhere.status_code == 200


def guesses_with_forged_forwarding(client: TestClient, peer: str) -> list[int]:
    statuses = []
    for index in range(4):
        headers = from_peer(peer) | {"X-Forwarded-For": f"198.18.0.{index + 1}"}
        statuses.append(client.post("/auth/token", json=WRONG, headers=headers).status_code)
    return statuses


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    pasar_settings: Settings,
) -> None:
    small = pasar_settings.with_overrides(login_failures_per_pair=3)
    # Default: the header is anyone's to forge, so a new value per guess buys nothing.
    with behind_network(small) as client:
        assert guesses_with_forged_forwarding(client, "203.0.113.50") == [401] * 3 + [429]
    # Behind a proxy the operator trusts, each forwarded client has its own budget; a peer that
    # is not that proxy is still counted by its own address.
    behind_proxy = small.with_overrides(trusted_proxies=("10.1.0.0/16",))
    with behind_network(behind_proxy, sign_up=False) as client:
        assert guesses_with_forged_forwarding(client, "10.1.0.5") == [401] * 4
        assert guesses_with_forged_forwarding(client, "203.0.113.51") == [401] * 3 + [429]


def test_graphql_log_in_is_throttled_by_the_same_budgets(small_budgets: TestClient) -> None:
    peers = small_budgets
    query = "mutation ($e: String!, $p: String!) { logIn(email: $e, password: $p) { accessToken } }"
    stranger = from_peer("203.0.113.60")

    def attempt(variables: dict[str, Any]) -> list[str]:
        body = peers.post(
            "/graphql", json={"query": query, "variables": variables}, headers=stranger
        ).json()
        return [error["extensions"]["code"] for error in body.get("errors", [])]

    for _ in range(2):
        assert attempt({"e": OWNER, "p": "not the password"}) == ["UNAUTHENTICATED"]
    for _ in range(1):  # REST and GraphQL share the budget
        assert peers.post("/auth/token", json=WRONG, headers=stranger).status_code == 401
    assert attempt({"e": OWNER, "p": TEST_PASSWORD}) == ["RATE_LIMITED"]
