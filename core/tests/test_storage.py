"""Migrations match the models, and the embeddings table has a working HNSW index."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from pasar_core.errors import StartupError
from pasar_core.storage.db import async_url, build_engine
from pasar_core.storage.migrate import alembic_config
from sqlalchemy import text


def test_migrations_match_the_models(pasar_database_url: str) -> None:
    command.check(alembic_config(pasar_database_url))  # raises when a migration is missing


def test_downgrade_and_upgrade_again(pasar_database_url: str) -> None:
    config = alembic_config(pasar_database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)


@pytest.mark.anyio
@pytest.mark.parametrize("size", [384, 1536])
async def test_embeddings_of_each_size_use_their_own_hnsw_index(
    pasar_database_url: str, size: int
) -> None:
    engine = build_engine(pasar_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            user_id = uuid.uuid4()
            await connection.execute(
                text("INSERT INTO users (id, email, password_hash) VALUES (:id, :email, 'h')"),
                {"id": user_id, "email": f"v{size}@x.io"},
            )
            for dimensions in (384, 1536):  # vectors of both sizes live in one table
                for i in range(50):
                    vector = [0.0] * dimensions
                    vector[i] = 1.0
                    await connection.execute(
                        text("INSERT INTO embeddings (id, user_id, content, metadata, embedding) "
                             "VALUES (:id, :user, :content, '{}', :embedding)"),
                        {"id": uuid.uuid4(), "user": user_id, "content": f"{dimensions} doc {i}",
                         "embedding": str(vector)},
                    )  # fmt: skip
            query = [0.0] * size
            query[3] = 1.0
            nearest_sql = (
                f"SELECT content FROM embeddings WHERE dimensions = {size} "
                f"ORDER BY embedding::vector({size}) <=> CAST(:q AS vector({size})) LIMIT 3"
            )
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in await connection.execute(
                    text("EXPLAIN " + nearest_sql), {"q": str(query)}
                )
            )
            # embeddings is partitioned: each partition has its own copy of the index
            copies = (await connection.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
            ), {"parent": f"ix_embeddings_hnsw_{size}"})).scalars().all()  # fmt: skip
            assert copies
            assert any(f"Index Scan using {copy} " in plan for copy in copies), plan
            nearest = await connection.scalar(text(nearest_sql), {"q": str(query)})
            assert nearest == f"{size} doc 3"
            await transaction.rollback()
    finally:
        await engine.dispose()


def test_database_urls_are_pointed_at_asyncpg() -> None:
    assert async_url("postgresql://u:p@h:5/d") == "postgresql+asyncpg://u:p@h:5/d"
    assert async_url("postgres://u@h/d").startswith("postgresql+asyncpg://")
    with pytest.raises(StartupError, match="must be PostgreSQL"):
        async_url("sqlite:///x.db")
    with pytest.raises(StartupError, match="not a valid"):
        async_url("::::")


MIGRATION_LOCK_ID = 0x70617361  # the migrations' advisory lock (migrations/env.py)


def test_concurrent_upgrades_through_a_concurrent_index_build(pasar_database_url: str) -> None:
    """Processes starting together (held at the migration lock, then let go at once) migrate
    once, all succeeding, and an index the operator built beforehand (0023) is kept."""
    import asyncio
    import subprocess
    import sys

    import asyncpg

    config = alembic_config(pasar_database_url)
    command.downgrade(config, "0020_inviter_cascade")
    built = "CREATE INDEX CONCURRENTLY ix_executions_created ON executions (created_at)"
    code = "import sys; from pasar_core.storage.migrate import upgrade; upgrade(sys.argv[1])"
    results: list[subprocess.CompletedProcess[str]] = []

    async def race() -> None:
        holder = await asyncpg.connect(pasar_database_url.replace("+asyncpg", ""))
        try:
            await holder.execute(built)  # what docs/database.md tells operators of big tables
            await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
            processes = [
                subprocess.Popen([sys.executable, "-c", code, pasar_database_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(3)
            ]  # fmt: skip
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while await holder.fetchval(waiting) < len(processes):
                assert all(p.poll() is None for p in processes)
                await asyncio.sleep(0.05)
            await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
            for process in processes:
                output, _ = await asyncio.to_thread(process.communicate, timeout=300)
                results.append(subprocess.CompletedProcess(process.args, process.returncode,
                                                           output))  # fmt: skip
        finally:
            await holder.close()

    asyncio.run(race())
    assert [r.returncode for r in results] == [0, 0, 0], [r.stdout for r in results]
    command.check(config)
