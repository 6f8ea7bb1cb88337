"""Migration 0010_organisations on existing data: every user gets a personal organisation where
they are admin, the old `admin` role becomes the operator flag, API keys keep the old role (a
former viewer's keys stay read-only), and agents and runs move into their owner's organisation."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from pasar_core.storage.db import build_engine
from pasar_core.storage.migrate import alembic_config
from sqlalchemy import text

ROLES = ("admin", "member", "viewer")


def test_existing_users_agents_keys_and_runs_move_into_personal_organisations(
    pasar_database_url: str,
) -> None:
    config = alembic_config(pasar_database_url)
    command.downgrade(config, "0009")
    users = {role: uuid.uuid4() for role in ROLES}
    agents: dict[str, uuid.UUID] = {}
    keys: dict[str, uuid.UUID] = {}
    runs: dict[str, uuid.UUID] = {}

    async def before() -> None:
        engine = build_engine(pasar_database_url, pool_size=1)
        async with engine.begin() as connection:
            for role, user_id in users.items():
                agents[role], keys[role], runs[role] = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                values = {"u": user_id, "role": role, "a": agents[role], "k": keys[role],
                          "r": runs[role], "email": f"{role}@example.com"}  # fmt: skip
                for statement in (
                    "INSERT INTO users (id, email, password_hash, role) VALUES (:u, :email, 'h', :role)",
                    "INSERT INTO agents (id, owner_id, name, config) VALUES (:a, :u, 'a', '{}')",
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash) "
                    "VALUES (:k, :u, 'k', 'psr_x', md5(:email))",
                    "INSERT INTO executions (id, agent_id, user_id, status, input, parameters, steps) "
                    'VALUES (:r, :a, :u, \'succeeded\', \'"hi"\', \'{}\', \'[]\')',
                ):  # fmt: skip
                    await connection.execute(text(statement), values)
        await engine.dispose()

    async def after() -> None:
        engine = build_engine(pasar_database_url, pool_size=1)
        async with engine.connect() as connection:
            for role, user_id in users.items():
                row = (await connection.execute(text(
                    "SELECT o.id, o.personal, o.name, m.role, u.operator FROM organisations o "
                    "JOIN memberships m ON m.organisation_id = o.id JOIN users u ON u.id = m.user_id "
                    "WHERE m.user_id = :u"), {"u": user_id})).one()  # fmt: skip
                assert (row.personal, row.name, row.role) == (True, f"{role}@example.com", "admin")
                assert row.operator is (role == "admin")
                key = (await connection.execute(text(
                    "SELECT organisation_id, role FROM api_keys WHERE id = :k"), {"k": keys[role]}
                )).one()  # fmt: skip
                assert (key.organisation_id, key.role) == (row.id, role)
                for table, row_id in (("agents", agents[role]), ("executions", runs[role])):
                    moved = await connection.scalar(
                        text(f"SELECT organisation_id FROM {table} WHERE id = :i"), {"i": row_id}
                    )
                    assert moved == row.id
                shared = await connection.scalar(
                    text("SELECT shared_role FROM agents WHERE id = :i"), {"i": agents[role]}
                )
                assert shared is None  # private, as before
        await engine.dispose()

    asyncio.run(before())
    command.upgrade(config, "head")
    asyncio.run(after())
    command.check(config)
