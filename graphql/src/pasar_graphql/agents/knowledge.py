"""An agent's knowledge (memory: "vector"): add text or a file, list, search and delete its
documents. The same services and models as REST (`pasar_core.memory.knowledge`), so the same
limits, typed errors and policy operations; a GraphQL body is capped by `PASAR_MAX_BODY_BYTES`
(REST raises the cap for uploads), so large files go through REST."""

from __future__ import annotations

from datetime import datetime

import strawberry
from pasar_core.memory import knowledge
from pasar_core.memory.store import Hit
from pasar_core.schemas import parse_model

from pasar_graphql.context import Info
from pasar_graphql.permissions import allowed


@strawberry.type(description="A document an agent learned: its chunks embedded by `model`.")
class KnowledgeDocument:
    id: strawberry.ID
    name: str
    chunks: int
    chars: int
    model: str
    created_at: datetime

    @classmethod
    def of(cls, document: knowledge.Document) -> KnowledgeDocument:
        return cls(id=strawberry.ID(str(document.id)), name=document.name,
                   chunks=document.chunks, chars=document.chars, model=document.model,
                   created_at=document.created_at)  # fmt: skip


@strawberry.type(description="A chunk near the query: the agent's knowledge or your exchanges.")
class KnowledgeHit:
    id: strawberry.ID
    kind: str = strawberry.field(description="knowledge or exchange.")
    document_id: strawberry.ID | None
    document: str | None = strawberry.field(description="The document's name.")
    chunk: int | None
    content: str
    score: float = strawberry.field(description="Cosine similarity to the query (1: the same).")

    @classmethod
    def of(cls, hit: Hit) -> KnowledgeHit:
        chunk = hit.metadata.get("chunk")
        return cls(
            id=strawberry.ID(str(hit.id)), kind=hit.kind,
            document_id=strawberry.ID(str(hit.document_id)) if hit.document_id else None,
            document=hit.metadata.get("name"), chunk=chunk if isinstance(chunk, int) else None,
            content=hit.content, score=round(hit.score, 4),
        )  # fmt: skip


async def resolve_knowledge(info: Info, agent_id: strawberry.ID) -> list[KnowledgeDocument]:
    context = info.context
    documents = await knowledge.list_documents(
        context.services, await context.principal(), agent_id
    )
    return [KnowledgeDocument.of(document) for document in documents]


async def resolve_search_knowledge(
    info: Info, agent_id: strawberry.ID, query: str, k: int = 5
) -> list[KnowledgeHit]:
    context = info.context
    search = parse_model(knowledge.KnowledgeQuery, {"query": query, "k": k}, what="search")
    hits = await knowledge.search(context.services, await context.principal(), agent_id, search)
    return [KnowledgeHit.of(hit) for hit in hits]


async def resolve_add_knowledge(
    info: Info, agent_id: strawberry.ID, name: str, text: str
) -> KnowledgeDocument:
    context = info.context
    body = parse_model(knowledge.KnowledgeText, {"name": name, "text": text}, what="document")
    document = await knowledge.add_text(
        context.services, await context.principal(), agent_id, body.name, body.text
    )
    return KnowledgeDocument.of(document)


async def resolve_add_knowledge_file(
    info: Info, agent_id: strawberry.ID, filename: str, content_base64: str
) -> KnowledgeDocument:
    context = info.context
    body = parse_model(knowledge.KnowledgeFile,
                       {"filename": filename, "content_base64": content_base64}, what="file")  # fmt: skip
    document = await knowledge.add_file(
        context.services, await context.principal(), agent_id, body.filename, body.content()
    )
    return KnowledgeDocument.of(document)


async def resolve_delete_knowledge(
    info: Info, agent_id: strawberry.ID, document_id: strawberry.ID
) -> bool:
    context = info.context
    await knowledge.delete_document(
        context.services, await context.principal(), agent_id, document_id
    )
    return True


@strawberry.type
class KnowledgeQueries:
    knowledge = strawberry.field(
        resolver=resolve_knowledge,
        permission_classes=allowed("agents.knowledge.list"),
        description="The documents an agent learned, oldest first.",
    )
    search_knowledge = strawberry.field(
        resolver=resolve_search_knowledge,
        permission_classes=allowed("agents.knowledge.search"),
        description="The `k` (1 to 50) chunks nearest `query`: the agent's knowledge and your "
        "own past exchanges with it, nearest first.",
    )


@strawberry.type
class KnowledgeMutations:
    add_knowledge = strawberry.mutation(
        resolver=resolve_add_knowledge,
        permission_classes=allowed("agents.knowledge.add"),
        description="Chunk, embed and store a text document for the agent's vector memory.",
    )
    add_knowledge_file = strawberry.mutation(
        resolver=resolve_add_knowledge_file,
        permission_classes=allowed("agents.knowledge.add"),
        description="Learn a file (PDF, DOCX, PPTX, XLSX, CSV, TXT, MD), its bytes in base64; "
        "within the request body cap (REST takes files up to 20 MiB).",
    )
    delete_knowledge = strawberry.mutation(
        resolver=resolve_delete_knowledge,
        permission_classes=allowed("agents.knowledge.delete"),
        description="Forget one document (all its chunks); true when done.",
    )
