"""An agent's knowledge through the API: documents added (text, or files of the kinds the files
plugin reads), chunked and embedded; listed, searched and deleted. Each call is checked against
the policy table on the agent, like every agent operation."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text as text_

from pasar_core.accounts.principal import Principal
from pasar_core.agents.config import AgentConfig, KnowledgeSettings
from pasar_core.agents.service import owned_agent, parse_agent_id
from pasar_core.errors import NotFound, PasarError, PayloadTooLarge, ValidationFailed
from pasar_core.memory import store
from pasar_core.memory.chunks import chunk_text
from pasar_core.memory.embedder import checked_vectors
from pasar_core.services import Services
from pasar_core.storage.models import Agent

log = logging.getLogger("pasar.knowledge")

MAX_DOCUMENT_CHARS = 2_000_000
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_DOCUMENT_CHUNKS = 4_000
MAX_AGENT_CHUNKS = 200_000
MAX_QUERY_CHARS = 4_000
EMBED_BATCH = 64


class UnsupportedFileType(ValidationFailed):
    code = "UNSUPPORTED_FILE_TYPE"
    status = 415


class UnreadableDocument(ValidationFailed):
    code = "UNREADABLE_DOCUMENT"


class KnowledgeText(BaseModel):
    """Body of add: a document's name and its text."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=MAX_DOCUMENT_CHARS)


class KnowledgeFile(BaseModel):
    """Body of a file upload: its name (the extension picks the reader) and its bytes, base64."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1, max_length=(MAX_FILE_BYTES * 4) // 3 + 4)

    def content(self) -> bytes:
        try:
            return base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("content_base64 is not valid base64") from None


class KnowledgeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(default=5, ge=1, le=50)


@dataclass(frozen=True, slots=True)
class Document:
    id: uuid.UUID
    name: str
    chunks: int
    chars: int
    model: str
    created_at: datetime


def knowledge_settings(agent: Agent) -> KnowledgeSettings:
    return AgentConfig.model_validate(agent.config).knowledge


async def embed(services: Services, model: str, texts: Sequence[str]) -> list[list[float]]:
    """Vectors of `texts` by the embedding model `model`, computed in worker threads (a local
    model runs on this CPU; the first call loads it)."""
    embedder = services.embedders.get(services.registry, services.settings.env, model)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = list(texts[start : start + EMBED_BATCH])
        vectors.extend(await asyncio.to_thread(embedder.embed, batch))
    checked_vectors(model, texts, vectors)
    return vectors


async def _agent(services: Services, principal: Principal, agent_id: str, operation: str) -> Agent:
    async with services.sessionmaker() as session:
        return await owned_agent(session, principal, parse_agent_id(agent_id), operation=operation)


async def add_text(
    services: Services, principal: Principal, agent_id: str, name: str, text: str
) -> Document:
    """Chunk, embed and store one document. Refused whole (nothing stored) when it is too big,
    empty, or would take the agent past its chunk budget."""
    agent = await _agent(services, principal, agent_id, "agents.knowledge.add")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PayloadTooLarge(
            f"the document has {len(text)} characters; the limit is {MAX_DOCUMENT_CHARS}",
            details={"limit": MAX_DOCUMENT_CHARS},
        )
    chunks = chunk_text(text)
    if not chunks:
        raise ValidationFailed("the document has no text to learn")
    if len(chunks) > MAX_DOCUMENT_CHUNKS:
        raise PayloadTooLarge(
            f"the document makes {len(chunks)} chunks; the limit is {MAX_DOCUMENT_CHUNKS}",
            details={"limit": MAX_DOCUMENT_CHUNKS},
        )
    model = knowledge_settings(agent).embedding_model
    vectors = await embed(services, model, chunks)
    document_id = uuid.uuid4()
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(session, principal, agent.id, operation="agents.knowledge.add")
        await session.execute(
            text_("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"knowledge|{agent.id}"},
        )  # budget checked under a lock: two adds never both squeeze past it
        held = await store.chunk_count(session, agent.id)
        if held + len(chunks) > MAX_AGENT_CHUNKS:
            raise PayloadTooLarge(
                f"the agent holds {held} chunks; {len(chunks)} more would pass its limit of "
                f"{MAX_AGENT_CHUNKS}",
                details={"limit": MAX_AGENT_CHUNKS},
            )
        await store.insert_chunks(
            session, user_id=agent.owner_id, agent_id=agent.id, kind="knowledge", model=model,
            document_id=document_id, chunks=chunks, vectors=vectors, metadata={"name": name},
        )  # fmt: skip
        rows = [row for row in await store.documents(session, agent.id) if row.id == document_id]
    log.info("agent %s learned %r: %d chunks", agent.id, name[:100], len(chunks))
    return Document(**{slot: getattr(rows[0], slot) for slot in Document.__slots__})


async def add_file(
    services: Services, principal: Principal, agent_id: str, filename: str, data: bytes
) -> Document:
    """A file's text (PDF, DOCX, PPTX, XLSX, CSV, TXT: the files plugin's readers, with their
    guards) learned as one document named after the file."""
    await _agent(services, principal, agent_id, "agents.knowledge.add")  # foreign ids: NOT_FOUND
    try:
        from pasar_files.documents import KINDS, document_kind, document_text
    except ImportError:
        raise UnsupportedFileType("reading files needs the pasar-files plugin") from None
    name = filename.strip()[:200]
    if not name or document_kind(name) is None:
        raise UnsupportedFileType(
            f"{name[:100]!r} is not a kind of file pasar reads", details={"kinds": list(KINDS)}
        )
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            f"the file has {len(data)} bytes; the limit is {MAX_FILE_BYTES}",
            details={"limit": MAX_FILE_BYTES},
        )
    try:
        text = await asyncio.to_thread(document_text, name, data, max_chars=MAX_DOCUMENT_CHARS)
    except PasarError as error:  # the readers' ToolError: damaged, another format, too long
        raise UnreadableDocument(error.message) from None
    return await add_text(services, principal, agent_id, name, text)


async def list_documents(services: Services, principal: Principal, agent_id: str) -> list[Document]:
    async with services.sessionmaker() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.knowledge.list"
        )
        rows = await store.documents(session, agent.id)
    return [Document(**{slot: getattr(row, slot) for slot in Document.__slots__}) for row in rows]


async def delete_document(
    services: Services, principal: Principal, agent_id: str, document_id: str
) -> None:
    async with services.sessionmaker.begin() as session:
        agent = await owned_agent(
            session, principal, parse_agent_id(agent_id), operation="agents.knowledge.delete"
        )
        try:
            parsed = uuid.UUID(document_id)
        except ValueError:
            raise NotFound(f"no document with id {document_id[:100]!r}") from None
        if not await store.delete_document(session, agent.id, parsed):
            raise NotFound(f"no document with id {document_id[:100]!r}")


async def search_agent(
    services: Services, agent_id: uuid.UUID, settings: KnowledgeSettings, query: str, k: int,
    caller: uuid.UUID,
) -> list[store.Hit]:  # fmt: skip
    """The agent's `k` chunks nearest to `query`, with `caller`'s past exchanges (no permission
    check: callers did it)."""
    model = settings.embedding_model
    async with services.sessionmaker() as session:
        if not await store.holds(session, agent_id, model):
            return []  # nothing to find: the model is not even loaded
    [vector] = await embed(services, model, [query[:MAX_QUERY_CHARS]])
    async with services.sessionmaker.begin() as session:
        return await store.nearest(
            session, agent_id=agent_id, model=model, vector=vector, k=k, caller=caller
        )


async def search(
    services: Services, principal: Principal, agent_id: str, query: KnowledgeQuery
) -> list[store.Hit]:
    agent = await _agent(services, principal, agent_id, "agents.knowledge.search")
    return await search_agent(
        services, agent.id, knowledge_settings(agent), query.query, query.k, principal.user_id
    )
