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
async def test_embeddings_use_the_hnsw_index(pasar_database_url: str) -> None:
    engine = build_engine(pasar_database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            user_id = uuid.uuid4()
            await connection.execute(
                text("INSERT INTO users (id, email, password_hash) VALUES (:id, 'v@x.io', 'h')"),
                {"id": user_id},
            )
            for i in range(50):
                vector = [0.0] * 384
                vector[i % 384] = 1.0
                await connection.execute(
                    text("INSERT INTO embeddings (id, user_id, content, metadata, embedding) "
                         "VALUES (:id, :user, :content, '{}', :embedding)"),
                    {"id": uuid.uuid4(), "user": user_id, "content": f"doc {i}", "embedding": str(vector)},
                )  # fmt: skip
            query = [0.0] * 384
            query[3] = 1.0
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in await connection.execute(
                    text(
                        "EXPLAIN SELECT content FROM embeddings ORDER BY embedding <=> :q LIMIT 3"
                    ),
                    {"q": str(query)},
                )
            )
            assert "ix_embeddings_embedding_hnsw" in plan
            nearest = await connection.scalar(
                text("SELECT content FROM embeddings ORDER BY embedding <=> :q LIMIT 1"),
                {"q": str(query)},
            )
            assert nearest == "doc 3"
    finally:
        await engine.dispose()


def test_database_urls_are_pointed_at_asyncpg() -> None:
    assert async_url("postgresql://u:p@h:5/d") == "postgresql+asyncpg://u:p@h:5/d"
    assert async_url("postgres://u@h/d").startswith("postgresql+asyncpg://")
    with pytest.raises(StartupError, match="must be PostgreSQL"):
        async_url("sqlite:///x.db")
    with pytest.raises(StartupError, match="not a valid"):
        async_url("::::")
