"""`xlsx:read` (rows of a sheet or an A1 range) and `xlsx:write` (sheets of rows)."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields
from pasar_files.guard import Deadline, check_package
from pasar_files.limits import (
    OBJECT_READ_MAX_BYTES,
    READ_DEFAULT_CHARS,
    READ_MAX_CHARS,
    XLSX_READ_DEFAULT_ROWS,
    XLSX_READ_MAX_COLUMNS,
    XLSX_READ_MAX_ROWS,
    XLSX_READ_MAX_SHEET_NAMES,
    XLSX_WRITE_MAX_CELLS,
    XLSX_WRITE_MAX_SHEETS,
)
from pasar_files.markup import xml_safe
from pasar_files.store import checked_key, ensure_writable, read_object, save_object

TIMEOUT_S = 60.0
MAX_ROW_NUMBER = 1_048_576
Cell = str | int | float | bool | None


def _value(value: object) -> Cell:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def _chars(value: Cell) -> int:
    """What a cell adds to the read's character budget: its JSON, with its separator."""
    if isinstance(value, str):
        return len(value) + 4
    return 6 if value is None else len(str(value)) + 2


def _bounds(cell_range: str | None) -> tuple[int, int, int | None, int | None]:
    """(min_col, min_row, max_col, max_row) of an A1 range; None means open-ended."""
    from openpyxl.utils.cell import range_boundaries  # imported on use: start-up stays fast

    if not cell_range:
        return 1, 1, None, None
    try:
        min_col, min_row, max_col, max_row = range_boundaries(cell_range.upper())
    except (ValueError, TypeError):
        raise ToolError(f"range {cell_range[:40]!r} is not an A1 range like 'A1:D20'") from None
    return min_col or 1, min_row or 1, max_col, max_row


def read_xlsx(
    data: bytes,
    shown: str,
    *,
    sheet: str | None,
    cell_range: str | None,
    limit: int,
    offset: int,
    max_chars: int,
    deadline: Deadline,
) -> dict[str, Any]:
    """Up to `limit` rows of one sheet (after `offset` rows of the range), cells as JSON values."""
    from openpyxl import load_workbook  # imported on use: start-up stays fast
    from openpyxl.utils.cell import get_column_letter
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    check_package(data, shown, "XLSX", deadline)
    min_col, min_row, max_col, max_row = _bounds(cell_range)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types on damaged packages
        raise ToolError(f"{shown!r} is not a readable XLSX file", details={"path": shown}) from None
    try:
        names = list(book.sheetnames)
        name = sheet if sheet is not None else names[0] if names else None
        if name not in names:
            raise ToolError(f"{shown!r} has no sheet {sheet!r}; its sheets: {names!r:.500}")
        ws = book[name]
        if not isinstance(ws, ReadOnlyWorksheet):
            raise ToolError(f"sheet {name!r} of {shown!r} is a chart, not a worksheet")
        if max_col is None:
            ws.reset_dimensions()  # the stored dimension may be wrong: read rows as they are
        last_col = None if max_col is None else min(max_col, min_col + XLSX_READ_MAX_COLUMNS - 1)
        cols_truncated = max_col is not None and last_col != max_col
        start = min_row + offset
        stop = min(max_row or MAX_ROW_NUMBER, start + limit, MAX_ROW_NUMBER)  # one extra row
        rows: list[list[Cell]] = []
        truncated = False
        chars = 0
        if start <= stop:
            cells = ws.iter_rows(
                min_row=start, max_row=stop, min_col=min_col, max_col=last_col, values_only=True
            )
            for row in cells:
                deadline.check(shown)
                if len(row) > XLSX_READ_MAX_COLUMNS:
                    cols_truncated = True
                values = [_value(value) for value in row[:XLSX_READ_MAX_COLUMNS]]
                chars += sum(_chars(value) for value in values)
                if len(rows) >= limit or chars > max_chars:
                    truncated = True
                    break
                rows.append(values)
        while rows and all(value is None for value in rows[-1]):
            rows.pop()
        truncated = truncated or cols_truncated
    except ToolError:
        raise
    except Exception:
        raise ToolError(
            f"{shown!r} is damaged and could not be read", details={"path": shown}
        ) from None
    finally:
        book.close()
    return {
        "path": shown,
        "sheets": names[:XLSX_READ_MAX_SHEET_NAMES],
        "sheet": name,
        "first_row": start,
        "first_column": get_column_letter(min_col),
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
    }


def write_xlsx(sheets: list[dict[str, Any]], *, formulas: bool, deadline: Deadline) -> bytes:
    """An XLSX with one worksheet per entry; strings starting with '=' stay text unless formulas."""
    from openpyxl import Workbook  # imported on use: start-up stays fast
    from openpyxl.cell import WriteOnlyCell

    total = sum(len(row) for sheet in sheets for row in sheet["rows"])
    if total > XLSX_WRITE_MAX_CELLS:
        raise ToolError(f"{total} cells is more than the {XLSX_WRITE_MAX_CELLS} one call may write")
    seen: set[str] = set()
    book = Workbook(write_only=True)
    for sheet in sheets:
        name = sheet["name"]
        if name.casefold() in seen:
            raise ToolError(f"two sheets are named {name!r} (names ignore case)")
        seen.add(name.casefold())
        ws = book.create_sheet(title=name)
        for row in sheet["rows"]:
            deadline.check("the workbook")
            cells: list[Any] = []
            for value in row:
                if isinstance(value, str):
                    value = xml_safe(value)
                    if value.startswith("=") and not formulas:
                        cell = WriteOnlyCell(ws, value=value)
                        cell.data_type = "s"
                        cells.append(cell)
                        continue
                cells.append(value)
            ws.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key, data = await read_object(ctx, args["path"], max_bytes=OBJECT_READ_MAX_BYTES)
    return await asyncio.to_thread(
        read_xlsx,
        data,
        key,
        sheet=args.get("sheet"),
        cell_range=args.get("range"),
        limit=args.get("limit", XLSX_READ_DEFAULT_ROWS),
        offset=args.get("offset", 0),
        max_chars=args.get("max_chars", READ_DEFAULT_CHARS),
        deadline=Deadline.after(TIMEOUT_S - 2),
    )


async def _run_write(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key = checked_key(args["path"], ".xlsx")
    await ensure_writable(ctx, key, overwrite=args.get("overwrite", True))
    data = await asyncio.to_thread(
        write_xlsx,
        args["sheets"],
        formulas=args.get("formulas", False),
        deadline=Deadline.after(TIMEOUT_S - 2),
    )
    saved = await save_object(ctx, key, data)
    rows = sum(len(sheet["rows"]) for sheet in args["sheets"])
    return {**saved, "sheets": len(args["sheets"]), "rows_written": rows}


_CELL: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": 32_767},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
}
_SHEET_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 31,
    "pattern": r"^[^\[\]:*?/\\']([^\[\]:*?/\\]*[^\[\]:*?/\\'])?$",
    "description": "Sheet name: at most 31 characters, none of [ ] : * ? / \\.",
}

XLSX_READ = ToolSpec(
    id="xlsx:read",
    title="Read an Excel (XLSX) file",
    description=(
        "Read rows from a sheet of an .xlsx workbook in your files (cached values of formulas, "
        "dates as ISO text). sheet picks the sheet (default the first); range limits the cells "
        "(A1 notation, e.g. 'B2:F100' or 'A:C'); offset skips rows of the range. Returns at "
        f"most limit rows (default {XLSX_READ_DEFAULT_ROWS}) and {XLSX_READ_MAX_COLUMNS} "
        "columns; truncated=true means more follow. Also lists all sheet names."
    ),
    input_schema=fields.read_input(
        sheet={"type": "string", "minLength": 1, "maxLength": 31, "description": "Sheet name."},
        range={
            "type": "string",
            "maxLength": 30,
            "pattern": r"^\$?[A-Za-z]{0,3}\$?[0-9]{0,7}(:\$?[A-Za-z]{0,3}\$?[0-9]{0,7})?$",
            "description": "Cells in A1 notation, e.g. 'A1:D20', 'B:D', '3:10'.",
        },
        limit={
            "type": "integer",
            "minimum": 1,
            "maximum": XLSX_READ_MAX_ROWS,
            "default": XLSX_READ_DEFAULT_ROWS,
        },
        offset={"type": "integer", "minimum": 0, "maximum": MAX_ROW_NUMBER, "default": 0},
        max_chars={
            "type": "integer",
            "minimum": 1,
            "maximum": READ_MAX_CHARS,
            "default": READ_DEFAULT_CHARS,
            "description": "Most characters of cells to return, counted as their JSON text.",
        },
    ),
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": [
            "path",
            "sheets",
            "sheet",
            "first_row",
            "first_column",
            "rows",
            "row_count",
            "truncated",
        ],
        "properties": {
            "path": {"type": "string"},
            "sheets": {"type": "array", "items": {"type": "string"}},
            "sheet": {"type": "string"},
            "first_row": {"type": "integer", "minimum": 1},
            "first_column": {"type": "string"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": ["string", "number", "boolean", "null"]},
                },
            },
            "row_count": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_read,
    effect=Effect.READ,
    timeout_s=TIMEOUT_S,
)

XLSX_WRITE = ToolSpec(
    id="xlsx:write",
    title="Write an Excel (XLSX) file",
    description=(
        "Create an .xlsx workbook in your files with one or more sheets of rows (each row a "
        "list of cells: text, numbers, booleans or null). Text starting with '=' is stored as "
        "text unless formulas=true. At most "
        f"{XLSX_WRITE_MAX_SHEETS} sheets and {XLSX_WRITE_MAX_CELLS} cells. Returns the file's "
        "path and size."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "sheets"],
        "properties": {
            "path": {**fields.PATH, "pattern": r"(?i)\.xlsx$"},
            "sheets": {
                "type": "array",
                "minItems": 1,
                "maxItems": XLSX_WRITE_MAX_SHEETS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "rows"],
                    "properties": {
                        "name": _SHEET_NAME,
                        "rows": {
                            "type": "array",
                            "maxItems": XLSX_WRITE_MAX_CELLS,
                            "items": {"type": "array", "maxItems": 16_384, "items": _CELL},
                        },
                    },
                },
            },
            "formulas": {
                "type": "boolean",
                "default": False,
                "description": "Store text starting with '=' as formulas.",
            },
            "overwrite": fields.OVERWRITE,
        },
    },
    output_schema=fields.created_file(
        sheets={"type": "integer", "minimum": 1},
        rows_written={"type": "integer", "minimum": 0},
    ),
    run=_run_write,
    effect=Effect.WRITE,
    timeout_s=TIMEOUT_S,
)
