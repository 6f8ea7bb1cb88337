"""`pdf:read` (text per page) and `pdf:create` (a document from markdown-ish text)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields
from pasar_files.guard import Deadline
from pasar_files.limits import (
    CREATE_MAX_TEXT_CHARS,
    OBJECT_READ_MAX_BYTES,
    PDF_CREATE_MAX_PAGES,
    PDF_MAX_PAGES,
    PDF_READ_MAX_PAGES,
    READ_DEFAULT_CHARS,
    READ_MAX_CHARS,
)
from pasar_files.markup import Block, parse_markup
from pasar_files.store import checked_key, ensure_writable, read_object, save_object

READ_TIMEOUT_S = 60.0
CREATE_TIMEOUT_S = 60.0
_HEADING_SIZES = {1: 20, 2: 16, 3: 14, 4: 12, 5: 12, 6: 12}
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
     "\u2026": "...", "\u2022": "-", "\u00a0": " ", "\u2212": "-", "\t": "    "}
)  # fmt: skip


def read_pdf(
    data: bytes, shown: str, *, first: int, last: int | None, max_chars: int, deadline: Deadline
) -> dict[str, Any]:
    """Text of pages `first..last` (1-based), at most PDF_READ_MAX_PAGES pages and `max_chars`."""
    from pypdf import PasswordType, PdfReader  # imported on use: start-up stays fast

    damaged = f"{shown!r} is not a readable PDF file (damaged, or another format)"
    if b"%PDF-" not in data[:1024]:
        raise ToolError(damaged, details={"path": shown})
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ToolError(f"{shown!r} is protected by a password", details={"path": shown})
        count = len(reader.pages)
    except ToolError:
        raise
    except Exception:  # pypdf raises many types on hostile input
        raise ToolError(damaged, details={"path": shown}) from None
    if count > PDF_MAX_PAGES:
        raise ToolError(f"{shown!r} has {count} pages; the limit is {PDF_MAX_PAGES}")
    if first > count:
        raise ToolError(
            f"{shown!r} has {count} pages; first_page {first} is past its end",
            details={"path": shown},
        )
    wanted = min(count if last is None else last, count)
    if wanted < first:
        raise ToolError("last_page must not be before first_page")
    stop = min(wanted, first + PDF_READ_MAX_PAGES - 1)
    pages: list[dict[str, Any]] = []
    chars = 0
    truncated = stop < wanted
    for number in range(first, stop + 1):
        deadline.check(shown)
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception:
            raise ToolError(
                f"page {number} of {shown!r} could not be read (damaged)", details={"path": shown}
            ) from None
        if chars + len(text) > max_chars:
            pages.append({"page": number, "text": text[: max_chars - chars]})
            truncated = True
            break
        chars += len(text)
        pages.append({"page": number, "text": text})
    return {"path": shown, "page_count": count, "pages": pages, "truncated": truncated}


def _latin(text: str, replaced: list[int]) -> str:
    """The built-in PDF fonts hold Latin-1 only: map typography, replace the rest with '?'."""
    text = text.translate(_TYPOGRAPHY)
    out = []
    for char in text:
        if ord(char) < 256 and (char.isprintable() or char == "\n"):
            out.append(char)
        else:
            replaced[0] += 1
            out.append("?")
    return "".join(out)


def create_pdf(text: str, title: str | None, deadline: Deadline) -> tuple[bytes, int, int]:
    """(PDF bytes, page count, characters replaced) for markdown-ish `text`."""
    from fpdf import FPDF  # imported on use: start-up stays fast
    from fpdf.errors import FPDFException

    replaced = [0]
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_creator("pasar")
    if title:
        pdf.set_title(_latin(title, [0]))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    blocks = parse_markup(text)
    if title:
        blocks.insert(0, Block("heading", title, level=1))
    for block in blocks:
        deadline.check("the PDF")
        body = _latin(block.text, replaced)
        pdf.set_x(pdf.l_margin)
        if block.kind == "heading":
            size = _HEADING_SIZES[block.level]
            pdf.set_font("Helvetica", "B", size)
            pdf.multi_cell(width, size * 0.5, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind == "paragraph":
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(width, 5.5, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        else:
            pdf.set_font("Helvetica", "", 11)
            indent = 6 * (block.level + 1)
            marker = f"{block.number}." if block.kind == "numbered" else "-"
            pdf.set_x(pdf.l_margin + indent - 5)
            pdf.cell(5, 5.5, marker)
            pdf.multi_cell(width - indent, 5.5, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        if pdf.pages_count > PDF_CREATE_MAX_PAGES:
            raise ToolError(f"the PDF would have more than {PDF_CREATE_MAX_PAGES} pages")
    try:
        return bytes(pdf.output()), pdf.pages_count, replaced[0]
    except FPDFException as error:  # pragma: no cover (input is sanitised above)
        raise ToolError(f"the PDF could not be made: {error}") from None


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key, data = await read_object(ctx, args["path"], max_bytes=OBJECT_READ_MAX_BYTES)
    return await asyncio.to_thread(
        read_pdf,
        data,
        key,
        first=args.get("first_page", 1),
        last=args.get("last_page"),
        max_chars=args.get("max_chars", READ_DEFAULT_CHARS),
        deadline=Deadline.after(READ_TIMEOUT_S - 2),
    )


async def _run_create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key = checked_key(args["path"], ".pdf")
    await ensure_writable(ctx, key, overwrite=args.get("overwrite", True))
    data, pages, replaced = await asyncio.to_thread(
        create_pdf, args["text"], args.get("title"), Deadline.after(CREATE_TIMEOUT_S - 2)
    )
    saved = await save_object(ctx, key, data)
    return {**saved, "pages": pages, "replaced_characters": replaced}


_PAGE = {"type": "integer", "minimum": 1, "maximum": PDF_MAX_PAGES}

PDF_READ = ToolSpec(
    id="pdf:read",
    title="Read a PDF file",
    description=(
        "Extract the text of a PDF in your files, page by page. first_page and last_page "
        f"(1-based, inclusive) pick a range; one call returns at most {PDF_READ_MAX_PAGES} pages "
        f"and max_chars characters (default {READ_DEFAULT_CHARS}). truncated=true means more "
        "text follows: read again from the next page. Scanned PDFs without a text layer give "
        "empty text."
    ),
    input_schema=fields.read_input(
        first_page={**_PAGE, "default": 1, "description": "First page to read (1-based)."},
        last_page={**_PAGE, "description": "Last page to read (default: the last page)."},
        max_chars={
            "type": "integer",
            "minimum": 1,
            "maximum": READ_MAX_CHARS,
            "default": READ_DEFAULT_CHARS,
            "description": "Most characters of text to return.",
        },
    ),
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "page_count", "pages", "truncated"],
        "properties": {
            "path": {"type": "string"},
            "page_count": {"type": "integer", "minimum": 0},
            "pages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["page", "text"],
                    "properties": {"page": {"type": "integer"}, "text": {"type": "string"}},
                },
            },
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_read,
    effect=Effect.READ,
    timeout_s=READ_TIMEOUT_S,
)

PDF_CREATE = ToolSpec(
    id="pdf:create",
    title="Create a PDF file",
    description=(
        "Create an A4 PDF in your files from markdown-ish text: '# ', '## ', '### ' headings, "
        "paragraphs separated by blank lines, '- ' bullets and '1. ' numbered items (indent by "
        "two spaces to nest). The built-in fonts hold Western European (Latin-1) characters; "
        "others are replaced with '?' and counted in replaced_characters. Returns the file's "
        "path and size."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "text"],
        "properties": {
            "path": {**fields.PATH, "pattern": r"(?i)\.pdf$"},
            "text": {"type": "string", "maxLength": CREATE_MAX_TEXT_CHARS},
            "title": {"type": "string", "maxLength": 500, "description": "A title heading."},
            "overwrite": fields.OVERWRITE,
        },
    },
    output_schema=fields.created_file(
        pages={"type": "integer", "minimum": 1},
        replaced_characters={"type": "integer", "minimum": 0},
    ),
    run=_run_create,
    effect=Effect.WRITE,
    timeout_s=CREATE_TIMEOUT_S,
)
