"""Google Drive: search files by name (also how spreadsheets are listed)."""

from __future__ import annotations

from typing import Any

from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_google_workspace import provider as scopes
from pasar_google_workspace.client import WWW, call

FIELDS = "nextPageToken,files(id,name,mimeType,modifiedTime,webViewLink)"


def _quoted(text: str) -> str:
    """A string literal of Drive's query language."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def drive_query(name_contains: str | None, mime_type: str | None = None) -> str:
    clauses = ["trashed = false"]
    if mime_type:
        clauses.append(f"mimeType = {_quoted(mime_type)}")
    if name_contains:
        clauses.append(f"name contains {_quoted(name_contains)}")
    return " and ".join(clauses)


async def list_files(ctx: ToolContext, query: str, limit: int) -> list[dict[str, Any]]:
    data = await call(
        ctx,
        "GET",
        WWW,
        "/drive/v3/files",
        params={"q": query, "pageSize": limit, "fields": FIELDS, "orderBy": "modifiedTime desc"},
    )
    return [
        {
            "id": f["id"],
            "name": f.get("name", ""),
            "mime_type": f.get("mimeType", ""),
            "modified_time": f.get("modifiedTime", ""),
            "url": f.get("webViewLink", ""),
        }
        for f in data.get("files", [])
    ]


async def search(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    query = drive_query(args["name_contains"], args.get("mime_type"))
    return {"files": await list_files(ctx, query, args.get("max_results", 20))}


DRIVE_SEARCH = ToolSpec(
    id="drive:search",
    title="Search Google Drive",
    description="Find Drive files whose name contains a text, optionally of one MIME type "
    "(for example 'application/vnd.google-apps.document').",
    input_schema={
        "type": "object",
        "required": ["name_contains"],
        "additionalProperties": False,
        "properties": {
            "name_contains": {"type": "string", "minLength": 1, "maxLength": 200},
            "mime_type": {"type": "string", "maxLength": 200},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
    },
    output_schema={
        "type": "object",
        "required": ["files"],
        "properties": {"files": {"type": "array", "items": {"type": "object"}}},
    },
    run=search,
    effect=Effect.READ,
    auth_provider="google",
    scopes=frozenset({scopes.DRIVE_METADATA_READONLY}),
)
