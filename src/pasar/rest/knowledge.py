"""An agent's knowledge: POST|GET /agents/{id}/knowledge, POST /agents/{id}/knowledge/files,
POST /agents/{id}/knowledge/search, DELETE /agents/{id}/knowledge/{document_id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pasar_core.memory import knowledge
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from pasar.body_limit import set_body_limit
from pasar.rest.requests import caller, read_model, services_of
from pasar.rest.responses import json_response

# JSON escapes and base64 make a body bigger than the text or file it carries.
TEXT_BODY_BYTES = knowledge.MAX_DOCUMENT_CHARS * 6 + 4096
FILE_BODY_BYTES = (knowledge.MAX_FILE_BYTES * 4) // 3 + 4096


class KnowledgeDocumentOut(BaseModel):
    id: uuid.UUID
    name: str
    chunks: int
    chars: int
    model: str
    created_at: datetime

    @classmethod
    def of(cls, document: knowledge.Document) -> KnowledgeDocumentOut:
        return cls(id=document.id, name=document.name, chunks=document.chunks,
                   chars=document.chars, model=document.model, created_at=document.created_at)  # fmt: skip


class KnowledgeListOut(BaseModel):
    documents: list[KnowledgeDocumentOut]


class KnowledgeHitOut(BaseModel):
    id: uuid.UUID
    kind: str
    document_id: uuid.UUID | None
    document: str | None
    chunk: int | None
    content: str
    score: float


class KnowledgeSearchOut(BaseModel):
    hits: list[KnowledgeHitOut]

    @classmethod
    def of(cls, hits: list[Any]) -> KnowledgeSearchOut:
        return cls(hits=[KnowledgeHitOut(**hit.as_json()) for hit in hits])


async def add_text(request: Request) -> Response:
    principal = await caller(request)
    set_body_limit(request.scope, TEXT_BODY_BYTES)
    body = await read_model(request, knowledge.KnowledgeText)
    document = await knowledge.add_text(
        services_of(request), principal, request.path_params["agent_id"], body.name, body.text
    )
    return json_response(KnowledgeDocumentOut.of(document), 201)


async def add_file(request: Request) -> Response:
    principal = await caller(request)
    set_body_limit(request.scope, FILE_BODY_BYTES)
    body = await read_model(request, knowledge.KnowledgeFile)
    document = await knowledge.add_file(
        services_of(request), principal, request.path_params["agent_id"], body.filename,
        body.content(),
    )  # fmt: skip
    return json_response(KnowledgeDocumentOut.of(document), 201)


async def list_documents(request: Request) -> Response:
    principal = await caller(request)
    documents = await knowledge.list_documents(
        services_of(request), principal, request.path_params["agent_id"]
    )
    return json_response(
        KnowledgeListOut(documents=[KnowledgeDocumentOut.of(d) for d in documents])
    )


async def search(request: Request) -> Response:
    principal = await caller(request)
    query = await read_model(request, knowledge.KnowledgeQuery)
    hits = await knowledge.search(
        services_of(request), principal, request.path_params["agent_id"], query
    )
    return json_response(KnowledgeSearchOut.of(hits))


async def delete_document(request: Request) -> Response:
    principal = await caller(request)
    params = request.path_params
    await knowledge.delete_document(
        services_of(request), principal, params["agent_id"], params["document_id"]
    )
    return Response(status_code=204)
