"""`files:list`: the user's files with size and modification time."""

from __future__ import annotations

from typing import Any

from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files.limits import LIST_DEFAULT, LIST_MAX, MAX_PATH_CHARS
from pasar_files.store import as_tool_errors, store_of


async def _run_list(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    limit = args.get("limit", LIST_DEFAULT)
    with as_tool_errors():
        found = await store_of(ctx).list(ctx.user_id, args.get("prefix", ""), limit=limit + 1)
    files = [
        {
            "path": info.key,
            "size_bytes": info.size,
            "modified": info.modified.isoformat(timespec="seconds"),
        }
        for info in found[:limit]
    ]
    return {"files": files, "truncated": len(found) > limit}


FILES_LIST = ToolSpec(
    id="files:list",
    title="List your files",
    description=(
        "List the files in your files folder (including those other tools created), sorted by "
        "path, with size in bytes and modification time (UTC, ISO 8601). prefix keeps paths "
        f"that start with it (e.g. 'reports/'); limit (default {LIST_DEFAULT}, at most "
        f"{LIST_MAX}) caps the list; truncated=true means more match."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "prefix": {
                "type": "string",
                "maxLength": MAX_PATH_CHARS,
                "default": "",
                "description": "Only paths starting with this text.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": LIST_MAX,
                "default": LIST_DEFAULT,
            },
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["files", "truncated"],
        "properties": {
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path", "size_bytes", "modified"],
                    "properties": {
                        "path": {"type": "string"},
                        "size_bytes": {"type": "integer", "minimum": 0},
                        "modified": {"type": "string"},
                    },
                },
            },
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_list,
    effect=Effect.READ,
    timeout_s=30.0,
)
