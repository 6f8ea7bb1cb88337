"""The `csv:read` and `csv:write` tools: UTF-8 CSV files in the user's object store."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields
from pasar_files.errors import FileLimitExceeded
from pasar_files.limits import (
    APPEND_MAX_BYTES,
    CSV_MAX_CELL_CHARS,
    CSV_MAX_COLUMNS,
    CSV_MAX_NAME_CHARS,
    CSV_MAX_RECORD_CHARS,
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

HEADER_PROBE_BYTES = 4 * MIB

Cell = str | int | float | bool | None


class _Lines:
    """The physical lines of a CSV text, as csv.reader pulls them, never more than
    CSV_MAX_RECORD_CHARS for one record: the reader takes lines until a record is complete, and
    `_records` starts the count again after each one."""

    def __init__(self, text: io.TextIOBase, shown: str) -> None:
        self._text = text
        self._shown = shown
        self.record_chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(CSV_MAX_RECORD_CHARS + 1)
        if not line:
            raise StopIteration
        self.record_chars += len(line)
        if self.record_chars > CSV_MAX_RECORD_CHARS:
            raise FileLimitExceeded(
                self._shown,
                f"a record is longer than {CSV_MAX_RECORD_CHARS // MIB} MiB of text",
                limit="record_chars",
                maximum=CSV_MAX_RECORD_CHARS,
            )
        return line


def _records(text: io.TextIOBase, shown: str, delimiter: str) -> Iterator[list[str]]:
    """Non-blank records of at most CSV_MAX_COLUMNS fields, parse and decode failures as
    ToolError; each record is bounded in characters before it is split into fields."""
    lines = _Lines(text, shown)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise FileLimitExceeded(
                    shown,
                    f"a cell is longer than {CSV_MAX_CELL_CHARS} characters",
                    limit="cell_chars",
                    maximum=CSV_MAX_CELL_CHARS,
                ) from None
            raise ToolError(
                f"{shown!r} is not valid CSV: {error}", details={"path": shown}
            ) from None
        except UnicodeDecodeError:
            raise ToolError(f"{shown!r} is not UTF-8 text", details={"path": shown}) from None
        lines.record_chars = 0
        if len(record) > CSV_MAX_COLUMNS:
            raise FileLimitExceeded(
                shown,
                f"line {reader.line_num} has {len(record)} fields; at most {CSV_MAX_COLUMNS} "
                "columns can be read",
                limit="columns",
                maximum=CSV_MAX_COLUMNS,
            )
        if record:
            yield record


def _check_header(columns: list[str], shown: str) -> None:
    seen: set[str] = set()
    for name in columns:
        if len(name) > CSV_MAX_NAME_CHARS:
            raise FileLimitExceeded(
                shown,
                f"a column name is longer than {CSV_MAX_NAME_CHARS} characters; read it with "
                "header=false",
                limit="name_chars",
                maximum=CSV_MAX_NAME_CHARS,
            )
        if name in seen:
            raise ToolError(
                f"{shown!r} has the column {name[:100]!r} twice; read it with header=false",
                details={"path": shown},
            )
        seen.add(name)


def read_csv(
    data: bytes, shown: str, *, limit: int, offset: int, delimiter: str, header: bool
) -> dict[str, Any]:
    """Rows `offset .. offset+limit` of the CSV text `data` (after the header when `header`),
    at most CSV_READ_MAX_CHARS of them, counted as their JSON: cells with their quotes and
    separators, and each row's keys."""
    columns: list[str] = []
    rows: list[dict[str, str] | list[str]] = []
    truncated = False
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as text:
        records = _records(text, shown, delimiter)
        if header:
            columns = next(records, [])
            _check_header(columns, shown)
        keys = sum(len(name) + 4 for name in columns)  # '"name": ' in every row
        chars = 0
        for number, record in enumerate(itertools.islice(records, offset, None)):
            if header and len(record) > len(columns):
                raise ToolError(
                    f"a row of {shown!r} has {len(record)} fields but the header has "
                    f"{len(columns)}; read it with header=false",
                    details={"path": shown},
                )
            size = sum(map(len, record)) + 4 * max(len(record), len(columns)) + keys
            if number == 0 and size > CSV_READ_MAX_CHARS:
                raise FileLimitExceeded(
                    shown,
                    f"row {offset + 1} alone is more than the {CSV_READ_MAX_CHARS // MIB} MiB "
                    "of text one read returns",
                    limit="read_chars",
                    maximum=CSV_READ_MAX_CHARS,
                )
            chars += size
            if len(rows) >= limit or chars > CSV_READ_MAX_CHARS:
                truncated = True
                break
            if not header:
                rows.append(record)
                continue
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
        cells = [_cell(row.get(name)) for name in columns]
    elif len(row) != len(columns):
        raise ToolError(f"rows[{index}] has {len(row)} cells but there are {len(columns)} columns")
    else:
        cells = [_cell(value) for value in row]
    if any(len(cell) > CSV_MAX_CELL_CHARS for cell in cells):
        raise ToolError(
            f"rows[{index}] has a cell longer than {CSV_MAX_CELL_CHARS} characters, more than "
            "csv:read reads back"
        )
    return cells


def _existing_header(existing: bytes, delimiter: str, shown: str) -> list[str] | None:
    """The header of a non-empty file being appended to, or None when the file is empty."""
    probe = existing[:HEADER_PROBE_BYTES]
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    try:
        text = decoder.decode(probe, final=len(existing) <= HEADER_PROBE_BYTES)
    except UnicodeDecodeError:
        raise ToolError(f"{shown!r} is not UTF-8 text", details={"path": shown}) from None
    return next(_records(io.StringIO(text, newline=""), shown, delimiter), None)


def encode_csv(
    columns: list[str], rows: list[Mapping[str, Cell] | Sequence[Cell]], delimiter: str
) -> tuple[bytes, bytes]:
    """(header line, body) of `rows` as UTF-8 CSV, at most CSV_WRITE_MAX_BYTES together."""
    if len(set(columns)) != len(columns):
        raise ToolError("columns must not repeat a name")
    body = io.StringIO()
    writer = csv.writer(body, delimiter=delimiter, lineterminator="\n")
    try:
        for index, row in enumerate(rows):
            start = body.tell()
            writer.writerow(_cells(row, columns, index))
            if body.tell() - start > CSV_MAX_RECORD_CHARS:
                raise ToolError(
                    f"rows[{index}] would be more than {CSV_MAX_RECORD_CHARS // MIB} MiB of CSV "
                    "text, more than csv:read reads back as one record"
                )
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
        f"offset data rows, and at most {CSV_READ_MAX_CHARS // MIB} MiB of text (cells, and "
        "column names for each row); truncated=true means more rows follow (read again with a "
        f"larger offset). Files over {CSV_READ_MAX_BYTES // MIB} MiB, with more than "
        f"{CSV_MAX_COLUMNS} columns, cells over {CSV_MAX_CELL_CHARS} characters or records "
        f"over {CSV_MAX_RECORD_CHARS // MIB} MiB are refused (FILE_LIMIT_EXCEEDED)."
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
