"""Google Sheets: read ranges, update or append rows, list spreadsheets (through Drive)."""

from __future__ import annotations

from typing import Any

from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_google_workspace import provider as scopes
from pasar_google_workspace.client import ID_SCHEMA, SHEETS, call, seg
from pasar_google_workspace.drive import drive_query, list_files

RANGE = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\r\\n]+$"}
CELL = {"type": ["string", "number", "boolean", "null"]}
SPREADSHEET_MIME = "application/vnd.google-apps.spreadsheet"


async def read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    path = f"/v4/spreadsheets/{seg(args['spreadsheet_id'])}/values/{seg(args['range'])}"
    data = await call(ctx, "GET", SHEETS, path, params={"majorDimension": "ROWS"})
    return {"range": data.get("range", args["range"]), "values": data.get("values", [])}


async def write(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    path = f"/v4/spreadsheets/{seg(args['spreadsheet_id'])}/values/{seg(args['range'])}"
    body = {"range": args["range"], "majorDimension": "ROWS", "values": args["values"]}
    if args.get("mode", "update") == "append":
        data = await call(
            ctx,
            "POST",
            SHEETS,
            path + ":append",
            body=body,
            params={"valueInputOption": "USER_ENTERED", "insertDataOption": "INSERT_ROWS"},
        )
        data = data.get("updates", {})
    else:
        data = await call(
            ctx, "PUT", SHEETS, path, body=body, params={"valueInputOption": "USER_ENTERED"}
        )
    return {
        "updated_range": data.get("updatedRange", ""),
        "updated_rows": data.get("updatedRows", 0),
        "updated_cells": data.get("updatedCells", 0),
    }


async def list_sheets(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    files = await list_files(
        ctx, drive_query(args.get("name_contains"), SPREADSHEET_MIME), args.get("max_results", 20)
    )
    return {
        "spreadsheets": [{k: f[k] for k in ("id", "name", "modified_time", "url")} for f in files]
    }


SHEETS_READ = ToolSpec(
    id="sheets:read",
    title="Read a Google Sheets range",
    description="The values of a range (A1 notation, for example 'Sheet1!A1:D20') of a "
    "spreadsheet, as rows.",
    input_schema={
        "type": "object",
        "required": ["spreadsheet_id", "range"],
        "additionalProperties": False,
        "properties": {"spreadsheet_id": ID_SCHEMA, "range": RANGE},
    },
    output_schema={
        "type": "object",
        "required": ["range", "values"],
        "properties": {
            "range": {"type": "string"},
            "values": {"type": "array", "items": {"type": "array"}},
        },
    },
    run=read,
    effect=Effect.READ,
    auth_provider="google",
    scopes=frozenset({scopes.SPREADSHEETS_READONLY}),
)

SHEETS_WRITE = ToolSpec(
    id="sheets:write",
    title="Write to a Google Sheets range",
    description="Update a range with rows of values (mode 'update'), or append the rows after "
    "the table found in the range (mode 'append').",
    input_schema={
        "type": "object",
        "required": ["spreadsheet_id", "range", "values"],
        "additionalProperties": False,
        "properties": {
            "spreadsheet_id": ID_SCHEMA,
            "range": RANGE,
            "values": {
                "type": "array",
                "maxItems": 10_000,
                "items": {"type": "array", "items": CELL, "maxItems": 1000},
            },
            "mode": {"enum": ["update", "append"], "default": "update"},
        },
    },
    output_schema={
        "type": "object",
        "required": ["updated_range", "updated_rows", "updated_cells"],
        "properties": {
            "updated_range": {"type": "string"},
            "updated_rows": {"type": "integer"},
            "updated_cells": {"type": "integer"},
        },
    },
    run=write,
    effect=Effect.WRITE,
    auth_provider="google",
    scopes=frozenset({scopes.SPREADSHEETS}),
)

SHEETS_LIST = ToolSpec(
    id="sheets:list",
    title="List your spreadsheets",
    description="Your Google Sheets spreadsheets (id, name, last change), newest first, "
    "optionally only those whose name contains a text.",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name_contains": {"type": "string", "maxLength": 200},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
    },
    output_schema={
        "type": "object",
        "required": ["spreadsheets"],
        "properties": {"spreadsheets": {"type": "array", "items": {"type": "object"}}},
    },
    run=list_sheets,
    effect=Effect.READ,
    auth_provider="google",
    # Cross-API: the Sheets API cannot list spreadsheets; Drive's files.list can.
    scopes=frozenset({scopes.DRIVE_METADATA_READONLY}),
)
