"""The `csv:read` and `csv:write` tools: UTF-8 CSV files in the user's object store."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields
from pasar_files.limits import (
    APPEND_MAX_BYTES,
    CSV_MAX_COLUMNS,
    CSV_MAX_NAME_CHARS,
    CSV_READ_DEFAULT_ROWS,
    CSV_READ_MAX_BYTES,
    CSV_READ_MAX_CHARS,
    CSV_READ_MAX_OFFSET,
    CSV_READ_MAX_ROWS,
    CSV_WRITE_MAX_BYTES,
    CSV_WRITE_MAX_ROWS,
    MIB,
)
from pasar_files.store import checked_key, read_for_append, read_object, save_object

if TYPE_CHECKING:
    import _csv

HEADER_PROBE_BYTES = 4 * MIB

Cell = str | int | float | bool | None


def _records(reader: _csv.Reader, shown: str) -> Iterator[list[str]]:
    """Non-blank records, turning parse and decode failures into ToolError."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ToolError(
                f"{shown!r} is not valid CSV: {error}", details={"path": shown}
            ) from None
        except UnicodeDecodeError:
            raise ToolError(f"{shown!r} is not UTF-8 text", details={"path": shown}) from None
        if record:
            yield record


def _check_header(columns: list[str], shown: str) -> None:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise ToolError(
                f"{shown!r} has the column {name[:100]!r} twice; read it with header=false",
                details={"path": shown},
            )
        seen.add(name)


def read_csv(
    data: bytes, shown: str, *, limit: int, offset: int, delimiter: str, header: bool
) -> dict[str, Any]:
    """Rows `offset .. offset+limit` of the CSV text `data` (after the header when `header`)."""
    columns: list[str] = []
    rows: list[dict[str, str] | list[str]] = []
    truncated = False
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        records = _records(reader, shown)
        if header:
            columns = next(records, [])
            _check_header(columns, shown)
        chars = 0
        for record in itertools.islice(records, offset, None):
            chars += sum(map(len, record))
            if len(rows) >= limit or chars > CSV_READ_MAX_CHARS:
                truncated = True
                break
            if not header:
                rows.append(record)
                continue
            if len(record) > len(columns):
                raise ToolError(
                    f"line {reader.line_num} of {shown!r} has {len(record)} fields but the "
                    f"header has {len(columns)}; read it with header=false",
                    details={"path": shown},
                )
            record += [""] * (len(columns) - len(record))
            rows.append(dict(zip(columns, record, strict=True)))
    return {"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated}


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cells(row: Mapping[str, Cell] | Sequence[Cell], columns: list[str], index: int) -> list[str]:
    if isinstance(row, Mapping):
        unknown = [key for key in row if key not in columns]
        if unknown:
            raise ToolError(f"rows[{index}] has a key that is not a column: {unknown[0][:100]!r}")
        return [_cell(row.get(name)) for name in columns]
    if len(row) != len(columns):
        raise ToolError(f"rows[{index}] has {len(row)} cells but there are {len(columns)} columns")
    return [_cell(value) for value in row]


def _existing_header(existing: bytes, delimiter: str, shown: str) -> list[str] | None:
    """The header of a non-empty file being appended to, or None when the file is empty."""
    probe = existing[:HEADER_PROBE_BYTES]
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    try:
        text = decoder.decode(probe, final=len(existing) <= HEADER_PROBE_BYTES)
    except UnicodeDecodeError:
        raise ToolError(f"{shown!r} is not UTF-8 text", details={"path": shown}) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    return next(_records(reader, shown), None)


def encode_csv(
    columns: list[str], rows: list[Mapping[str, Cell] | Sequence[Cell]], delimiter: str
) -> tuple[bytes, bytes]:
    """(header line, body) of `rows` as UTF-8 CSV, at most CSV_WRITE_MAX_BYTES together."""
    if len(set(columns)) != len(columns):
        raise ToolError("columns must not repeat a name")
    body = io.StringIO()
    writer = csv.writer(body, delimiter=delimiter, lineterminator="\n")
    try:
        writer.writerows(_cells(row, columns, index) for index, row in enumerate(rows))
    except csv.Error as error:
        raise ToolError(f"cannot write these rows as CSV: {error}") from None
    header = io.StringIO()
    csv.writer(header, delimiter=delimiter, lineterminator="\n").writerow(columns)
    try:
        encoded_body = body.getvalue().encode("utf-8")
        encoded_header = header.getvalue().encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("columns or rows are not valid Unicode text (lone surrogate)") from None
    if len(encoded_body) + len(encoded_header) > CSV_WRITE_MAX_BYTES:
        raise ToolError(f"the CSV text would exceed {CSV_WRITE_MAX_BYTES // MIB} MiB; write less")
    return encoded_header, encoded_body


def appended(
    existing: bytes, header: bytes, body: bytes, columns: list[str], delimiter: str, shown: str
) -> bytes:
    """`existing` with `body` added below its header, which must be `columns` (or none yet)."""
    found = _existing_header(existing, delimiter, shown)
    if found is None:
        return existing + header + body
    if found != columns:
        raise ToolError(
            f"{shown!r} has the columns {found!r:.300}, not {columns!r:.300}; "
            "append with the same columns or use mode=overwrite",
            details={"path": shown},
        )
    newline = b"" if not existing or existing.endswith((b"\n", b"\r")) else b"\n"
    return existing + newline + body


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key, data = await read_object(ctx, args["path"], max_bytes=CSV_READ_MAX_BYTES)
    return await asyncio.to_thread(
        read_csv,
        data,
        key,
        limit=args.get("limit", CSV_READ_DEFAULT_ROWS),
        offset=args.get("offset", 0),
        delimiter=args.get("delimiter", ","),
        header=args.get("header", True),
    )


async def _run_write(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Write a header and rows, or append rows below a matching header."""
    key = checked_key(args["path"])
    columns: list[str] = args["columns"]
    delimiter: str = args.get("delimiter", ",")
    header, body = await asyncio.to_thread(encode_csv, columns, args["rows"], delimiter)
    data = header + body
    if args.get("mode", "overwrite") == "append":
        existing = await read_for_append(ctx, key, adding=len(data))
        data = await asyncio.to_thread(appended, existing, header, body, columns, delimiter, key)
    saved = await save_object(ctx, key, data)
    return {"path": saved["path"], "rows_written": len(args["rows"])}


_CELL: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}

CSV_READ = ToolSpec(
    id="csv:read",
    title="Read a CSV file",
    description=(
        "Read rows from a UTF-8 CSV file in your files folder. With header=true (default) the "
        "first line names the columns and each row is an object keyed by column; with "
        "header=false each row is a list of strings and columns is empty. Returns at most limit "
        f"rows (default {CSV_READ_DEFAULT_ROWS}, at most {CSV_READ_MAX_ROWS}) starting after "
        "offset data rows, and at most 10 MiB of cell text; truncated=true means more rows "
        f"follow (read again with a larger offset). Files over {CSV_READ_MAX_BYTES // MIB} MiB "
        "are refused."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": fields.PATH,
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": CSV_READ_MAX_ROWS,
                "default": CSV_READ_DEFAULT_ROWS,
                "description": f"Most rows to return (at most {CSV_READ_MAX_ROWS}).",
            },
            "offset": {
                "type": "integer",
                "minimum": 0,
                "maximum": CSV_READ_MAX_OFFSET,
                "default": 0,
                "description": "Data rows to skip first (the header line does not count).",
            },
            "delimiter": fields.DELIMITER,
            "header": {
                "type": "boolean",
                "default": True,
                "description": "Whether the first line holds the column names.",
            },
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "rows", "row_count", "truncated"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"type": "object", "additionalProperties": {"type": "string"}},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
            },
            "row_count": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_read,
    effect=Effect.READ,
    timeout_s=60.0,
)

CSV_WRITE = ToolSpec(
    id="csv:write",
    title="Write a CSV file",
    description=(
        "Write rows to a UTF-8 CSV file in your files folder, creating folders as needed. "
        "columns names the columns (written as the header line); each row is an object keyed "
        "by column (missing keys become empty cells) or a list with one cell per column. "
        "mode 'overwrite' (default) replaces the file; 'append' adds rows below an existing "
        f"header, which must match columns. At most {CSV_WRITE_MAX_ROWS} rows, "
        f"{CSV_MAX_COLUMNS} columns and 10 MiB of CSV text per call; an append may grow a file "
        f"to {APPEND_MAX_BYTES // MIB} MiB."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "columns", "rows"],
        "properties": {
            "path": fields.PATH,
            "columns": {
                "type": "array",
                "minItems": 1,
                "maxItems": CSV_MAX_COLUMNS,
                "uniqueItems": True,
                "items": {"type": "string", "maxLength": CSV_MAX_NAME_CHARS},
                "description": "Column names, in order.",
            },
            "rows": {
                "type": "array",
                "maxItems": CSV_WRITE_MAX_ROWS,
                "items": {
                    "anyOf": [
                        {
                            "type": "object",
                            "maxProperties": CSV_MAX_COLUMNS,
                            "additionalProperties": _CELL,
                        },
                        {"type": "array", "maxItems": CSV_MAX_COLUMNS, "items": _CELL},
                    ]
                },
                "description": "Rows: objects keyed by column, or lists of cells in column order.",
            },
            "mode": fields.MODE,
            "delimiter": fields.DELIMITER,
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "rows_written"],
        "properties": {
            "path": {"type": "string"},
            "rows_written": {"type": "integer", "minimum": 0},
        },
    },
    run=_run_write,
    effect=Effect.WRITE,
    timeout_s=60.0,
)
