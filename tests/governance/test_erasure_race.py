"""Two admins of an organisation erasing themselves at the same moment: the erasures wait for
each other on the organisation's memberships, so exactly one succeeds and the other is told
LAST_ADMIN; the organisation keeps an admin. Real concurrent transactions on PostgreSQL: a third
connection holds the membership rows until both erasures are waiting on them."""

from __future__ import annotations

import asyncio
import uuid

from pasar_core.accounts.principal import Principal
from pasar_core.errors import LastAdmin
from pasar_core.privacy.erasure import ErasureRequest, delete_my_account
from pasar_core.services import Services
from pasar_core.settings import Settings
from pasar_core.storage.db import async_url
from pasar_core.testing import TEST_PASSWORD
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from tests.support.teams import join


def person(client: TestClient) -> tuple[str, dict[str, str], Principal]:
    email = f"r-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": TEST_PASSWORD}
    assert client.post("/auth/signup", json=credentials).status_code == 201
    token = client.post("/auth/token", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers).json()
    user_id = uuid.UUID(me["data"]["me"]["id"])
    return email, headers, Principal(user_id, email, "admin", "token", user_id)


def test_two_admins_erasing_themselves_at_once_leave_an_admin(
    client: TestClient, pasar_settings: Settings
) -> None:
    _, alice, alice_p = person(client)
    bob_email, bob, bob_p = person(client)
    carol_email, carol, _ = person(client)
    team = client.post("/organisations", json={"name": "t"}, headers=alice).json()["id"]
    switched = client.post("/auth/switch", json={"organisation_id": team}, headers=alice)
    in_team = {"Authorization": f"Bearer {switched.json()['access_token']}"}
    join(client, in_team, bob, bob_email, "admin")
    join(client, in_team, carol, carol_email, "member")
    services: Services = client.app_state["services"]
    request = ErasureRequest(password=TEST_PASSWORD)

    async def race() -> list[BaseException | uuid.UUID]:
        engine = create_async_engine(async_url(pasar_settings.database_url or ""))
        try:
            async with engine.connect() as holder, engine.connect() as watcher:
                await holder.begin()
                await holder.execute(
                    text("SELECT 1 FROM memberships WHERE organisation_id = :o FOR UPDATE"),
                    {"o": uuid.UUID(team)},
                )
                erasures = [
                    asyncio.ensure_future(delete_my_account(services, None, who, request))
                    for who in (alice_p, bob_p)
                ]
                while True:  # both are inside their last transaction, waiting on the rows
                    waiting = await watcher.scalar(
                        text("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                             "USING (pid) WHERE NOT l.granted AND a.pid <> pg_backend_pid()")
                    )  # fmt: skip
                    await watcher.rollback()
                    if (waiting or 0) >= 2 or any(e.done() for e in erasures):
                        break
                    await asyncio.sleep(0.02)
                await holder.rollback()
                return list(await asyncio.gather(*erasures, return_exceptions=True))
        finally:
            await engine.dispose()

    assert client.portal is not None
    outcomes = client.portal.call(race)
    refused = [o for o in outcomes if isinstance(o, LastAdmin)]
    erased = [o for o in outcomes if isinstance(o, uuid.UUID)]
    assert (len(erased), len(refused)) == (1, 1), outcomes
    assert refused[0].details == {"organisations": [team]}

    async def admins() -> list[str]:
        engine = create_async_engine(async_url(pasar_settings.database_url or ""))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT role FROM memberships WHERE organisation_id = :o"),
                    {"o": uuid.UUID(team)},
                )
                return sorted(str(r[0]) for r in rows)
        finally:
            await engine.dispose()

    assert client.portal.call(admins) == ["admin", "member"]
