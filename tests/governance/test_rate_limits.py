"""Rate limits: per user, per API key and per address, by route class; each GraphQL operation,
each alias of a limited field and each operation of a batch counts; 429 with Retry-After
(GraphQL: RATE_LIMITED with retryAfter); in this process or in a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.accounts.principal import Principal
from pasar_core.errors import StartupError
from pasar_core.rate_limits import (
    InProcessCounter,
    RateLimited,
    RateLimiter,
    RatePolicy,
    RedisCounter,
    RouteClass,
    parse_rate,
)
from pasar_core.settings import Settings
from pasar_core.testing import TEST_PASSWORD
from starlette.testclient import TestClient

from pasar.app import create_app
from tests.support.redis_server import redis_server

AGENT = {"name": "a", "tools": ["txt:read"]}
CREATE = 'createAgent(input: {name: "a", tools: ["txt:read"]}) { agent { id } }'


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def app_client(settings: Settings, peer: str = "198.51.100.7") -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False, client=(peer, 5000))


def sign_in(client: TestClient) -> dict[str, str]:
    credentials = {"email": f"rl-{uuid.uuid4().hex[:8]}@example.com", "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def limited(settings: Settings, **rates: str) -> Settings:
    base = {"rate_limit_auth": "1000/60", "rate_limit_writes": "1000/60",
            "rate_limit_runs": "1000/60"}  # fmt: skip
    return settings.with_overrides(**(base | rates))


def gql(client: TestClient, query: str, headers: dict[str, str]) -> Any:
    return client.post("/graphql", json={"query": query}, headers=headers)


@pytest.mark.parametrize("backend", ["in-process", "redis"])
def test_writes_per_user_and_per_address(
    pasar_settings: Settings, backend: str, request: pytest.FixtureRequest
) -> None:
    """2 writes a minute per user; the address may make 4 x 2 (people behind one address)."""
    settings = limited(pasar_settings, rate_limit_writes="2/60")
    if backend == "redis":
        settings = settings.with_overrides(redis_url=request.getfixturevalue("redis_url"))
    with app_client(settings, peer=f"198.51.100.{1 if backend == 'redis' else 2}") as client:
        users = [sign_in(client) for _ in range(5)]
        answers = [[client.post("/agents", json=AGENT, headers=user).status_code
                    for _ in range(3)] for user in users[:2]]  # fmt: skip
        assert answers == [[201, 201, 429], [201, 201, 429]]
        refused = client.post("/agents", json=AGENT, headers=users[0])
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"]["details"]["retry_after_s"] == int(
            refused.headers["Retry-After"]
        )
        # Reads are not limited; another class has its own budget.
        assert client.get("/agents", headers=users[0]).status_code == 200
        # Users 3 and 4 share the address: its budget (8) runs out after 4 more writes.
        more = [client.post("/agents", json=AGENT, headers=user).status_code
                for user in users[2:4] for _ in range(2)]  # fmt: skip
        assert more == [201, 201, 201, 201]
        assert client.post("/agents", json=AGENT, headers=users[4]).status_code == 429


def test_auth_counts_per_address(pasar_settings: Settings) -> None:
    settings = limited(pasar_settings, rate_limit_auth="3/60")
    with app_client(settings, peer="198.51.100.3") as client:
        statuses = [client.post("/auth/signup", json={"email": f"s{i}@example.com",
                                                      "password": TEST_PASSWORD}).status_code
                    for i in range(4)]  # fmt: skip
        assert statuses == [201, 201, 201, 429]
        assert client.post("/auth/token", json={"email": "s0@example.com",
                                                "password": TEST_PASSWORD}).status_code == 429  # fmt: skip
        answer = gql(client, 'mutation { logIn(email: "s0@example.com", password: "x") '
                             "{ accessToken } }", {})  # fmt: skip
        assert answer.status_code == 429
        assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def test_each_knowledge_search_counts_as_a_write(pasar_settings: Settings) -> None:
    """A search embeds its query: each searchKnowledge alias costs a write, as REST's search
    does; other queries cost nothing."""
    settings = limited(pasar_settings, rate_limit_writes="3/60")
    with app_client(settings, peer="198.51.100.5") as client:
        headers = sign_in(client)
        search = (
            'searchKnowledge(agentId: "00000000-0000-0000-0000-000000000000", query: "q") { id }'
        )
        aliased = "{ " + " ".join(f"s{i}: {search}" for i in range(4)) + " }"
        refused = gql(client, aliased, headers)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        reads = gql(client, "{ " + " ".join(f"t{i}: tools {{ id }}" for i in range(10)) + " }",
                    headers)  # fmt: skip
        assert reads.status_code == 200
        one = gql(client, "{ " + search + " }", headers)  # within budget: NOT_FOUND, not 429
        assert one.status_code == 200
        assert one.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_each_alias_and_each_operation_counts(pasar_settings: Settings) -> None:
    settings = limited(pasar_settings, rate_limit_writes="3/60")
    with app_client(settings, peer="198.51.100.4") as client:
        one, two, three = sign_in(client), sign_in(client), sign_in(client)
        # Four aliases of createAgent in one operation are four writes: refused as a whole.
        aliased = "mutation { " + " ".join(f"a{i}: {CREATE}" for i in range(4)) + " }"
        refused = gql(client, aliased, one)
        assert refused.status_code == 429
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == int(refused.headers["Retry-After"])
        assert refused.json()["data"] is None
        assert client.get("/agents", headers=one).json()["agents"] == []  # nothing ran
        # Three aliases fit exactly; the next write is refused, over REST too.
        fits = gql(
            client, "mutation { " + " ".join(f"a{i}: {CREATE}" for i in range(3)) + " }", one
        )
        assert fits.status_code == 200
        assert "errors" not in fits.json(), fits.json()
        assert gql(client, f"mutation {{ {CREATE} }}", one).status_code == 429
        assert client.post("/agents", json=AGENT, headers=one).status_code == 429
        # Fragments count their copies as well.
        fragment = ("mutation { ...m ...m2 } fragment m on Mutation { a: " + CREATE + " b: " + CREATE
                    + " } fragment m2 on Mutation { c: " + CREATE + " d: " + CREATE + " }")  # fmt: skip
        assert gql(client, fragment, two).status_code == 429
        # A batch: each operation is checked alone; the fourth write is refused, the others ran.
        batch = [{"query": f"mutation {{ {CREATE} }}"} for _ in range(4)]
        answer = client.post("/graphql", json=batch, headers=three)
        assert answer.status_code == 200  # part of it ran: not a 429 for the whole batch
        codes = [(item.get("errors") or [{}])[0].get("extensions", {}).get("code")
                 for item in answer.json()]  # fmt: skip
        assert sorted(codes, key=str) == [None, None, None, "RATE_LIMITED"]
        assert len(client.get("/agents", headers=three).json()["agents"]) == 3
        # Queries are reads: not counted.
        for _ in range(5):
            assert gql(client, "{ agents { id } }", three).status_code == 200


def test_runs_have_their_own_budget(pasar_settings: Settings) -> None:
    settings = limited(pasar_settings, rate_limit_runs="1/60")
    with app_client(settings, peer="198.51.100.5") as client:
        user = sign_in(client)
        config = {"model": "scripted", "model_options": {"script": [{"content": "hi"}]}}
        agent = client.post("/agents", json={**AGENT, "config": config}, headers=user).json()
        run = client.post(f"/agents/{agent['agent_id']}/execute", json={"input": "x"}, headers=user)
        assert run.status_code == 200
        again = client.post(
            f"/agents/{agent['agent_id']}/execute", json={"input": "x"}, headers=user
        )
        assert again.status_code == 429
        query = f'mutation {{ executeAgent(agentId: "{agent["agent_id"]}", input: "x") {{ id }} }}'
        assert gql(client, query, user).json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert client.post("/agents", json=AGENT, headers=user).status_code == 201  # writes: fine


def principal(api_key_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id or uuid.uuid4(), "p@example.com", "member",
                     via="api_key" if api_key_id else "token", organisation_id=uuid.uuid4(),
                     api_key_id=api_key_id)  # fmt: skip


@pytest.mark.parametrize("backend", ["in-process", "redis"])
def test_an_api_key_has_its_own_budget_and_a_refusal_charges_nothing(
    backend: str, request: pytest.FixtureRequest
) -> None:
    async def scenario() -> list[str]:
        counter = (RedisCounter(request.getfixturevalue("redis_url"), prefix=f"t{uuid.uuid4().hex}:")
                   if backend == "redis" else InProcessCounter())  # fmt: skip
        limiter = RateLimiter(RatePolicy({RouteClass.WRITES: parse_rate("x", "2/60")}), counter,
                              source_factor=10)  # fmt: skip
        user, key = uuid.uuid4(), uuid.uuid4()
        outcomes = []
        for caller in [principal(key, user), principal(key, user), principal(key, user),
                       principal(None, user), principal(uuid.uuid4(), user)]:  # fmt: skip
            try:
                await limiter.check(RouteClass.WRITES, caller, "192.0.2.1")
                outcomes.append("ok")
            except RateLimited as refused:
                outcomes.append(f"429:{refused.retry_after_s}")
        # A cost larger than the whole budget is refused and charges nothing.
        other = principal(None)
        with pytest.raises(RateLimited):
            await limiter.check(RouteClass.WRITES, other, "192.0.2.2", cost=3)
        await limiter.check(RouteClass.WRITES, other, "192.0.2.2", cost=2)
        await limiter.close()
        return outcomes

    outcomes = asyncio.run(scenario())
    # The key's third request is over the user's (and the key's) 2; the user is then over too.
    assert outcomes[:2] == ["ok", "ok"]
    assert all(outcome.startswith("429:") for outcome in outcomes[2:])
    assert all(1 <= int(outcome[4:]) <= 30 for outcome in outcomes[2:])


def test_a_budget_refills_with_time() -> None:
    now = [0.0]
    counter = InProcessCounter(clock=lambda: now[0])
    limiter = RateLimiter(RatePolicy({RouteClass.RUNS: parse_rate("x", "3/60")}), counter)

    async def attempt() -> bool:
        try:
            await limiter.check(RouteClass.RUNS, None, "192.0.2.9")
        except RateLimited:
            return False
        return True

    async def scenario() -> list[bool]:
        burst = [await attempt() for _ in range(4)]
        now[0] += 20.0  # one interval (60 / 3): room for one more
        return [*burst, await attempt(), await attempt()]

    assert asyncio.run(scenario()) == [True, True, True, False, True, False]


def test_memory_is_bounded() -> None:
    counter = InProcessCounter(max_keys=10)
    limiter = RateLimiter(RatePolicy({RouteClass.AUTH: parse_rate("x", "5/60")}), counter)

    async def flood() -> None:
        for i in range(100):
            await limiter.check(RouteClass.AUTH, None, f"192.0.2.{i}")

    asyncio.run(flood())
    assert len(counter._tat) == 10


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=20))
def test_bad_rate_settings_refuse_to_start(raw: str) -> None:
    try:
        rate = parse_rate("PASAR_RATE_LIMIT_WRITES", raw)
    except StartupError as refused:
        assert "PASAR_RATE_LIMIT_WRITES" in refused.message
        return
    assert rate is None or (rate.limit > 0 and rate.period_s > 0)


def test_settings_from_env() -> None:
    settings = Settings.from_env({"PASAR_RATE_LIMIT_RUNS": "off", "PASAR_RATE_LIMIT_AUTH": "5/10"})
    policy = settings.rate_policy()
    assert policy.rate(RouteClass.RUNS) is None
    assert policy.rate(RouteClass.AUTH) == parse_rate("", "5/10")
    assert policy.rate(RouteClass.WRITES) == parse_rate("", "120/60")  # the default
    with pytest.raises(StartupError):
        Settings.from_env({"PASAR_RATE_LIMIT_WRITES": "lots"})


def test_every_mutation_counts_against_a_budget_or_is_named_free() -> None:
    from pasar_graphql.rate_limits import LIMITED_FIELDS, UNLIMITED_MUTATIONS
    from pasar_graphql.schema import build_schema

    mutation = build_schema()._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) == set(LIMITED_FIELDS) | UNLIMITED_MUTATIONS


def test_erasing_an_account_checks_its_password_within_the_auth_budget(
    pasar_settings: Settings,
) -> None:
    settings = limited(pasar_settings, rate_limit_auth="5/60")
    with app_client(settings, peer="198.51.100.9") as client:
        headers = sign_in(client)  # counted for the address only: no user yet
        guesses = [client.request("DELETE", "/me", json={"password": f"guess-{i}"},
                                  headers=headers).status_code for i in range(3)]  # fmt: skip
        assert guesses == [403, 403, 403]  # WRONG_PASSWORD, counted
        query = 'mutation { deleteMyAccount(password: "guess") }'
        answers = [gql(client, query, headers) for _ in range(4)]
        codes = [a.json()["errors"][0]["extensions"]["code"] for a in answers]
        assert codes == ["WRONG_PASSWORD"] * 2 + ["RATE_LIMITED"] * 2, codes  # the user's 5
