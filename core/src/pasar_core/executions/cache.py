"""Result cache: identical input to an agent with `cache_ttl_s` returns the earlier output.

With REDIS_URL the outputs live in Redis under a TTL; otherwise the executions table is the
cache (the newest succeeded run with the same input hash, younger than the TTL and than the
agent's last change). The hash covers the input, the agent's config and tools, and the thread.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pasar_core.storage.models import Execution

KEY_PREFIX = "pasar:result:"


class ResultCache(Protocol):
    async def lookup(
        self, agent_id: uuid.UUID, digest: str, ttl_s: int, changed_at: datetime
    ) -> dict[str, Any] | None: ...

    async def store(
        self, agent_id: uuid.UUID, digest: str, output: dict[str, Any], ttl_s: int
    ) -> None: ...

    async def close(self) -> None: ...


class DatabaseResultCache:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def lookup(
        self, agent_id: uuid.UUID, digest: str, ttl_s: int, changed_at: datetime
    ) -> dict[str, Any] | None:
        async with self._sessionmaker() as session:
            hit = await session.scalar(
                select(Execution.output)
                .where(
                    Execution.agent_id == agent_id,
                    Execution.input_hash == digest,
                    Execution.status == "succeeded",
                    Execution.cached.is_(False),
                    Execution.created_at > datetime.now(UTC) - timedelta(seconds=ttl_s),
                    Execution.created_at > changed_at,
                )
                .order_by(Execution.created_at.desc())
                .limit(1)
            )
        return dict(hit) if hit is not None else None

    async def store(
        self, agent_id: uuid.UUID, digest: str, output: dict[str, Any], ttl_s: int
    ) -> None:
        return None  # the execution row itself is the cache entry

    async def close(self) -> None:
        return None


class RedisResultCache:
    def __init__(self, redis_url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url)

    @staticmethod
    def _key(agent_id: uuid.UUID, digest: str) -> str:
        return f"{KEY_PREFIX}{agent_id}:{digest}"

    async def lookup(
        self, agent_id: uuid.UUID, digest: str, ttl_s: int, changed_at: datetime
    ) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key(agent_id, digest))
        if raw is None:
            return None
        entry = json.loads(raw)
        if datetime.fromisoformat(entry["at"]) <= changed_at:
            return None
        output: dict[str, Any] = entry["output"]
        return output

    async def store(
        self, agent_id: uuid.UUID, digest: str, output: dict[str, Any], ttl_s: int
    ) -> None:
        entry = json.dumps({"at": datetime.now(UTC).isoformat(), "output": output}, default=str)
        await self._redis.set(self._key(agent_id, digest), entry, ex=ttl_s)

    async def close(self) -> None:
        await self._redis.aclose()


def build_result_cache(
    redis_url: str | None, sessionmaker: async_sessionmaker[AsyncSession]
) -> ResultCache:
    return RedisResultCache(redis_url) if redis_url else DatabaseResultCache(sessionmaker)
