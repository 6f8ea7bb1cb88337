"""Google Docs: read a document's text, create a document, append text."""

from __future__ import annotations

from typing import Any

from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_google_workspace import provider as scopes
from pasar_google_workspace.client import DOCS, ID_SCHEMA, call, seg

TEXT = {"type": "string", "minLength": 1, "maxLength": 100_000}
MAX_TEXT_OUT = 50_000


def _text_of(content: list[Any]) -> str:
    """The plain text of a document body's structural elements (paragraphs, tables)."""
    parts: list[str] = []
    for element in content:
        for run in element.get("paragraph", {}).get("elements", []):
            parts.append(run.get("textRun", {}).get("content", ""))
        for row in element.get("table", {}).get("tableRows", []):
            for cell in row.get("tableCells", []):
                parts.append(_text_of(cell.get("content", [])))
    return "".join(parts)


async def read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    doc = await call(ctx, "GET", DOCS, f"/v1/documents/{seg(args['document_id'])}")
    text = _text_of(doc.get("body", {}).get("content", []))
    return {
        "document_id": doc.get("documentId", args["document_id"]),
        "title": doc.get("title", ""),
        "text": text[:MAX_TEXT_OUT],
        "truncated": len(text) > MAX_TEXT_OUT,
    }


async def _insert(ctx: ToolContext, document_id: str, text: str) -> None:
    request = {"insertText": {"endOfSegmentLocation": {}, "text": text}}
    await call(
        ctx,
        "POST",
        DOCS,
        f"/v1/documents/{seg(document_id)}:batchUpdate",
        body={"requests": [request]},
    )


async def create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    doc = await call(ctx, "POST", DOCS, "/v1/documents", body={"title": args["title"]})
    document_id = doc["documentId"]
    if args.get("text"):
        await _insert(ctx, document_id, args["text"])
    return {
        "document_id": document_id,
        "title": doc.get("title", args["title"]),
        "url": f"https://docs.google.com/document/d/{document_id}/edit",
    }


async def append(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    await _insert(ctx, args["document_id"], args["text"])
    return {"document_id": args["document_id"], "appended_chars": len(args["text"])}


DOC_OUT = {
    "type": "object",
    "required": ["document_id", "title", "url"],
    "properties": {
        "document_id": {"type": "string"},
        "title": {"type": "string"},
        "url": {"type": "string"},
    },
}

DOCS_READ = ToolSpec(
    id="docs:read",
    title="Read a Google Doc",
    description="The title and plain text of a Google Docs document, by document id.",
    input_schema={
        "type": "object",
        "required": ["document_id"],
        "additionalProperties": False,
        "properties": {"document_id": ID_SCHEMA},
    },
    output_schema={
        "type": "object",
        "required": ["document_id", "title", "text"],
        "properties": {
            "document_id": {"type": "string"},
            "title": {"type": "string"},
            "text": {"type": "string"},
            "truncated": {"type": "boolean"},
        },
    },
    run=read,
    effect=Effect.READ,
    auth_provider="google",
    scopes=frozenset({scopes.DOCUMENTS_READONLY}),
)

DOCS_CREATE = ToolSpec(
    id="docs:create",
    title="Create a Google Doc",
    description="Create a Google Docs document with a title and, optionally, initial text.",
    input_schema={
        "type": "object",
        "required": ["title"],
        "additionalProperties": False,
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 300}, "text": TEXT},
    },
    output_schema=DOC_OUT,
    run=create,
    effect=Effect.WRITE,
    auth_provider="google",
    scopes=frozenset({scopes.DOCUMENTS}),
)

DOCS_APPEND = ToolSpec(
    id="docs:append",
    title="Append to a Google Doc",
    description="Append text at the end of a Google Docs document.",
    input_schema={
        "type": "object",
        "required": ["document_id", "text"],
        "additionalProperties": False,
        "properties": {"document_id": ID_SCHEMA, "text": TEXT},
    },
    output_schema={
        "type": "object",
        "required": ["document_id", "appended_chars"],
        "properties": {"document_id": {"type": "string"}, "appended_chars": {"type": "integer"}},
    },
    run=append,
    effect=Effect.WRITE,
    auth_provider="google",
    scopes=frozenset({scopes.DOCUMENTS}),
)
