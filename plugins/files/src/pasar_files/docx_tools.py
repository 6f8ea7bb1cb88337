"""`docx:read` (headings, paragraphs, tables in order) and `docx:create` (the same, written)."""

from __future__ import annotations

import asyncio
import io
import re
from typing import TYPE_CHECKING, Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph
from pasar_files.guard import Deadline, check_package
from pasar_files.limits import (
    DOCX_MAX_BLOCKS,
    OBJECT_READ_MAX_BYTES,
    READ_DEFAULT_CHARS,
    READ_MAX_CHARS,
    TABLE_MAX_CELLS,
)
from pasar_files.markup import xml_safe
from pasar_files.store import checked_key, ensure_writable, read_object, save_object

TIMEOUT_S = 60.0
_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def _paragraph(paragraph: Paragraph) -> dict[str, Any] | None:
    text = paragraph.text.strip()
    if not text:
        return None
    style = paragraph.style.name if paragraph.style is not None else ""
    style = style or ""
    heading = _HEADING_STYLE.match(style)
    if style == "Title" or heading:
        return {"type": "heading", "level": int(heading.group(1)) if heading else 0, "text": text}
    if style.startswith("List"):
        return {"type": "list_item", "style": style, "text": text}
    return {"type": "paragraph", "style": style, "text": text}


def _table(table: Table) -> dict[str, Any]:
    rows: list[list[str]] = []
    cells = 0
    for row in table.rows:
        values = [cell.text.strip() for cell in row.cells]
        cells += len(values)
        if cells > TABLE_MAX_CELLS:
            break
        rows.append(values)
    return {"type": "table", "rows": rows}


def read_docx(
    data: bytes, shown: str, *, offset: int, limit: int, max_chars: int, deadline: Deadline
) -> dict[str, Any]:
    """Blocks (headings, paragraphs, list items, tables) in document order."""
    from docx import Document  # imported on use: start-up stays fast
    from docx.text.paragraph import Paragraph

    check_package(data, shown, "DOCX", deadline)
    blocks: list[dict[str, Any]] = []
    truncated = False
    try:
        document = Document(io.BytesIO(data))
        seen = 0
        chars = 0
        for item in document.iter_inner_content():
            deadline.check(shown)
            block = _paragraph(item) if isinstance(item, Paragraph) else _table(item)
            if block is None:
                continue
            seen += 1
            if seen <= offset:
                continue
            size = (
                len(block.get("text", ""))
                + len(block.get("style", ""))
                + sum(len(cell) + 4 for row in block.get("rows", []) for cell in row)
            )
            if len(blocks) >= limit or chars + size > max_chars:
                truncated = True
                break
            chars += size
            blocks.append(block)
    except ToolError:
        raise
    except Exception:  # python-docx raises many types on damaged packages
        raise ToolError(f"{shown!r} is not a readable DOCX file", details={"path": shown}) from None
    return {"path": shown, "blocks": blocks, "truncated": truncated}


def create_docx(title: str | None, blocks: list[dict[str, Any]], deadline: Deadline) -> bytes:
    """A DOCX from blocks: heading, paragraph, bullets (or numbered) and table."""
    from docx import Document  # imported on use: start-up stays fast

    document = Document()
    if title:
        document.add_heading(xml_safe(title), level=0)
    cells = 0
    for block in blocks:
        deadline.check("the document")
        kind = block["type"]
        if kind == "heading":
            document.add_heading(xml_safe(block["text"]), level=block.get("level", 1))
        elif kind == "paragraph":
            document.add_paragraph(xml_safe(block["text"]))
        elif kind == "bullets":
            style = "List Number" if block.get("numbered") else "List Bullet"
            for item in block["items"]:
                document.add_paragraph(xml_safe(item), style=style)
        else:
            rows = block["rows"]
            width = max(len(row) for row in rows)
            cells += width * len(rows)
            if cells > TABLE_MAX_CELLS:
                raise ToolError(f"the tables would have more than {TABLE_MAX_CELLS} cells")
            table = document.add_table(rows=len(rows), cols=width)
            table.style = "Table Grid"
            for index, (row, values) in enumerate(zip(table.rows, rows, strict=True)):
                for cell, value in zip(row.cells, values, strict=False):
                    cell.text = xml_safe(value)
                    if index == 0 and block.get("header"):
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key, data = await read_object(ctx, args["path"], max_bytes=OBJECT_READ_MAX_BYTES)
    return await asyncio.to_thread(
        read_docx,
        data,
        key,
        offset=args.get("offset", 0),
        limit=args.get("limit", 500),
        max_chars=args.get("max_chars", READ_DEFAULT_CHARS),
        deadline=Deadline.after(TIMEOUT_S - 2),
    )


async def _run_create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key = checked_key(args["path"], ".docx")
    await ensure_writable(ctx, key, overwrite=args.get("overwrite", True))
    data = await asyncio.to_thread(
        create_docx, args.get("title"), args["blocks"], Deadline.after(TIMEOUT_S - 2)
    )
    return {**await save_object(ctx, key, data), "blocks": len(args["blocks"])}


_TEXT: dict[str, Any] = {"type": "string", "maxLength": 100_000}


def _block(kind: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {"type": {"const": kind}, **properties},
    }


DOCX_READ = ToolSpec(
    id="docx:read",
    title="Read a Word (DOCX) file",
    description=(
        "Read a .docx document in your files as blocks in order: headings (level 0 for the "
        "title, 1-9), paragraphs and list items (with their style name) and tables (rows of "
        "cell text). offset skips blocks, limit (default 500) caps them; truncated=true means "
        "more follow."
    ),
    input_schema=fields.read_input(
        offset={"type": "integer", "minimum": 0, "maximum": 10_000_000, "default": 0},
        limit={"type": "integer", "minimum": 1, "maximum": DOCX_MAX_BLOCKS, "default": 500},
        max_chars={
            "type": "integer",
            "minimum": 1,
            "maximum": READ_MAX_CHARS,
            "default": READ_DEFAULT_CHARS,
        },
    ),
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "blocks", "truncated"],
        "properties": {
            "path": {"type": "string"},
            "blocks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["heading", "paragraph", "list_item", "table"]},
                        "text": {"type": "string"},
                        "level": {"type": "integer", "minimum": 0},
                        "style": {"type": "string"},
                        "rows": {
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_read,
    effect=Effect.READ,
    timeout_s=TIMEOUT_S,
)

DOCX_CREATE = ToolSpec(
    id="docx:create",
    title="Create a Word (DOCX) file",
    description=(
        "Create a .docx document in your files from blocks, in order: "
        "{type: heading, text, level 1-4}, {type: paragraph, text}, "
        "{type: bullets, items, numbered?} and {type: table, rows (lists of cell text), "
        "header? (bold first row)}. title adds a title line. Returns the file's path and size."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "blocks"],
        "properties": {
            "path": {**fields.PATH, "pattern": r"(?i)\.docx$"},
            "title": {"type": "string", "maxLength": 1_000},
            "blocks": {
                "type": "array",
                "maxItems": DOCX_MAX_BLOCKS,
                "items": {
                    "oneOf": [
                        _block(
                            "heading",
                            ["text"],
                            text={"type": "string", "maxLength": 1_000},
                            level={"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
                        ),
                        _block("paragraph", ["text"], text=_TEXT),
                        _block(
                            "bullets",
                            ["items"],
                            items={
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 1_000,
                                "items": _TEXT,
                            },
                            numbered={"type": "boolean", "default": False},
                        ),
                        _block(
                            "table",
                            ["rows"],
                            rows={
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 1_000,
                                "items": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 50,
                                    "items": {"type": "string", "maxLength": 10_000},
                                },
                            },
                            header={"type": "boolean", "default": False},
                        ),
                    ]
                },
            },
            "overwrite": fields.OVERWRITE,
        },
    },
    output_schema=fields.created_file(blocks={"type": "integer", "minimum": 0}),
    run=_run_create,
    effect=Effect.WRITE,
    timeout_s=TIMEOUT_S,
)
