"""The SQL of knowledge: chunks in, nearest chunks out (cosine, each size on its own partial
HNSW index), documents listed and deleted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pasar_core.storage.models import INDEXED_DIMENSIONS, Embedding


@dataclass(frozen=True, slots=True)
class Hit:
    """One recalled chunk and its cosine similarity to the query (1: the same direction)."""

    id: uuid.UUID
    kind: str
    document_id: uuid.UUID | None
    content: str
    metadata: dict[str, Any]
    score: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "kind": self.kind, "content": self.content,
            "document_id": str(self.document_id) if self.document_id else None,
            "document": self.metadata.get("name"), "chunk": self.metadata.get("chunk"),
            "score": round(self.score, 4),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: uuid.UUID
    name: str
    chunks: int
    chars: int
    model: str
    created_at: datetime


def _literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


async def insert_chunks(
    session: AsyncSession, *, user_id: uuid.UUID, agent_id: uuid.UUID, kind: str, model: str,
    document_id: uuid.UUID | None, chunks: Sequence[str], vectors: Sequence[Sequence[float]],
    metadata: dict[str, Any],
) -> None:  # fmt: skip
    rows = [
        {"id": uuid.uuid4(), "user_id": user_id, "agent_id": agent_id, "kind": kind,
         "model": model, "document_id": document_id, "content": chunk,
         "metadata_": {**metadata, "chunk": index}, "embedding": list(vector)}
        for index, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    ]  # fmt: skip
    if rows:
        await session.execute(insert(Embedding), rows)


def search_breadth(k: int) -> int:
    """HNSW's `ef_search` for a top-`k` query. pgvector's default, 40, found 86% of the exact
    top 5 at 100k clustered chunks; 100 found 99% for 1.6x its time, still 26x faster than the
    exact scan (bench/README.md, "Vector memory recall")."""
    return max(100, min(1000, k * 20))


async def nearest(
    session: AsyncSession, *, agent_id: uuid.UUID, model: str, vector: Sequence[float], k: int,
    caller: uuid.UUID | None, exact: bool = False, ef_search: int | None = None,
) -> list[Hit]:  # fmt: skip
    """The `k` chunks of the agent's (made by `model`) nearest to `vector`, best first: its
    knowledge, and the past exchanges of `caller` only (a shared agent's other users' runs stay
    theirs). Sizes
    with an HNSW index use it (iterating past other agents' rows, so one agent's nearest are
    found among many agents'); `exact` scans instead (benchmarks, and the other sizes).
    `ef_search`: the index's candidate list (default `search_breadth(k)`)."""
    size = len(vector)
    if size in INDEXED_DIMENSIONS and not exact:
        await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        breadth = ef_search if ef_search is not None else search_breadth(k)
        await session.execute(text(f"SET LOCAL hnsw.ef_search = {max(1, min(1000, breadth))}"))
    else:
        await session.execute(text("SET LOCAL enable_indexscan = off"))
    distance = f"embedding::vector({size}) <=> CAST(:q AS vector({size}))"
    rows = await session.execute(
        text(
            f"SELECT id, kind, document_id, content, metadata, {distance} AS distance "  # noqa: S608 (size is an int)
            f"FROM embeddings WHERE agent_id = :agent AND model = :model AND dimensions = {size} "
            "AND (kind = 'knowledge' OR user_id = :caller) "
            f"ORDER BY {distance} LIMIT :k"
        ),
        {"q": _literal(vector), "agent": agent_id, "model": model, "k": k, "caller": caller},
    )
    hits = [Hit(row.id, row.kind, row.document_id, row.content, row.metadata,
                1.0 - float(row.distance)) for row in rows]  # fmt: skip
    return sorted(hits, key=lambda hit: -hit.score)  # relaxed order: sorted here


async def documents(session: AsyncSession, agent_id: uuid.UUID) -> list[DocumentRow]:
    rows = await session.execute(
        select(
            Embedding.document_id,
            func.min(Embedding.metadata_["name"].astext),
            func.count(),
            func.sum(func.length(Embedding.content)),
            func.min(Embedding.model),
            func.min(Embedding.created_at),
        )
        .where(Embedding.agent_id == agent_id, Embedding.kind == "knowledge")
        .group_by(Embedding.document_id)
        .order_by(func.min(Embedding.created_at), Embedding.document_id)
    )
    return [DocumentRow(*row) for row in rows if row[0] is not None]


async def delete_document(
    session: AsyncSession, agent_id: uuid.UUID, document_id: uuid.UUID
) -> int:
    result = await session.execute(
        delete(Embedding).where(
            Embedding.agent_id == agent_id, Embedding.document_id == document_id
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def chunk_count(session: AsyncSession, agent_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Embedding).where(Embedding.agent_id == agent_id)
    )
    return int(count or 0)


async def holds(session: AsyncSession, agent_id: uuid.UUID, model: str) -> bool:
    """Whether the agent has any chunk made by `model`."""
    found = await session.scalar(
        select(Embedding.id)
        .where(Embedding.agent_id == agent_id, Embedding.model == model)
        .limit(1)
    )
    return found is not None
