"""`pptx:read` (slide text and notes) and `pptx:create` (title and bullet slides with notes)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
from pasar_files.guard import Deadline, check_package
from pasar_files.limits import (
    OBJECT_READ_MAX_BYTES,
    PPTX_MAX_SLIDES,
    READ_DEFAULT_CHARS,
    READ_MAX_CHARS,
)
from pasar_files.markup import xml_safe
from pasar_files.store import checked_key, ensure_writable, read_object, save_object

TIMEOUT_S = 60.0
MAX_GROUP_DEPTH = 8


def _shape_texts(shapes: Iterable[BaseShape], depth: int = 0) -> Iterator[str]:
    """Paragraph texts of text boxes, tables and groups, in slide order."""
    from pptx.shapes.graphfrm import GraphicFrame  # imported on use: start-up stays fast
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if isinstance(shape, GroupShape) and depth < MAX_GROUP_DEPTH:
            yield from _shape_texts(shape.shapes, depth + 1)
        elif isinstance(shape, GraphicFrame) and shape.has_table:
            for row in shape.table.rows:
                cells = [cell.text.strip() for cell in row.cells]
                if any(cells):
                    yield " | ".join(cells)
        elif shape.has_text_frame:
            for paragraph in shape.text_frame.paragraphs:  # type: ignore[attr-defined]
                text = "".join(run.text for run in paragraph.runs).strip()
                if text:
                    yield text


def read_pptx(
    data: bytes, shown: str, *, first: int, limit: int, max_chars: int, deadline: Deadline
) -> dict[str, Any]:
    """Title, text and notes of slides `first .. first+limit-1` (1-based)."""
    from pptx import Presentation  # imported on use: start-up stays fast

    check_package(data, shown, "PPTX", deadline)
    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
        result: list[dict[str, Any]] = []
        chars = 0
        truncated = False
        for number, slide in enumerate(slides[first - 1 : first - 1 + limit], start=first):
            deadline.check(shown)
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            texts = [t for t in _shape_texts(slide.shapes) if t != title]
            notes = ""
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
            chars += len(title) + len(notes) + sum(len(text) + 4 for text in texts)
            if chars > max_chars:
                truncated = True
                break
            result.append({"slide": number, "title": title, "text": texts, "notes": notes})
        truncated = truncated or first - 1 + limit < len(slides)
    except ToolError:
        raise
    except Exception:  # python-pptx raises many types on damaged packages
        raise ToolError(f"{shown!r} is not a readable PPTX file", details={"path": shown}) from None
    return {"path": shown, "slide_count": len(slides), "slides": result, "truncated": truncated}


def create_pptx(
    title: str | None, subtitle: str | None, slides: list[dict[str, Any]], deadline: Deadline
) -> tuple[bytes, int]:
    """(PPTX bytes, slide count): an optional title slide, then title-and-bullets slides."""
    from pptx import Presentation  # imported on use: start-up stays fast

    deck = Presentation()
    title_layout, content_layout = deck.slide_layouts[0], deck.slide_layouts[1]
    if title:
        slide = deck.slides.add_slide(title_layout)
        slide.shapes.title.text = xml_safe(title)
        if subtitle:
            slide.placeholders[1].text = xml_safe(subtitle)
    for spec in slides:
        deadline.check("the presentation")
        slide = deck.slides.add_slide(content_layout)
        slide.shapes.title.text = xml_safe(spec.get("title", ""))
        frame = slide.placeholders[1].text_frame
        for index, bullet in enumerate(spec.get("bullets", [])):
            text, level = (
                (bullet, 0) if isinstance(bullet, str) else (bullet["text"], bullet.get("level", 0))
            )
            paragraph = frame.paragraphs[0] if index == 0 else frame.add_paragraph()
            paragraph.text = xml_safe(text)
            paragraph.level = level
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = xml_safe(spec["notes"])
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue(), len(deck.slides)


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key, data = await read_object(ctx, args["path"], max_bytes=OBJECT_READ_MAX_BYTES)
    return await asyncio.to_thread(
        read_pptx,
        data,
        key,
        first=args.get("first_slide", 1),
        limit=args.get("limit", 50),
        max_chars=args.get("max_chars", READ_DEFAULT_CHARS),
        deadline=Deadline.after(TIMEOUT_S - 2),
    )


async def _run_create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    key = checked_key(args["path"], ".pptx")
    await ensure_writable(ctx, key, overwrite=args.get("overwrite", True))
    data, count = await asyncio.to_thread(
        create_pptx,
        args.get("title"),
        args.get("subtitle"),
        args.get("slides", []),
        Deadline.after(TIMEOUT_S - 2),
    )
    return {**await save_object(ctx, key, data), "slides": count}


_TEXT: dict[str, Any] = {"type": "string", "maxLength": 10_000}

PPTX_READ = ToolSpec(
    id="pptx:read",
    title="Read a PowerPoint (PPTX) file",
    description=(
        "Read the slides of a .pptx presentation in your files: each slide's title, the text "
        "of its text boxes and tables (one entry per paragraph or table row) and its speaker "
        "notes. first_slide (1-based) and limit (default 50) pick slides; truncated=true means "
        "more follow."
    ),
    input_schema=fields.read_input(
        first_slide={
            "type": "integer",
            "minimum": 1,
            "maximum": PPTX_MAX_SLIDES * 20,
            "default": 1,
        },
        limit={"type": "integer", "minimum": 1, "maximum": PPTX_MAX_SLIDES, "default": 50},
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
        "required": ["path", "slide_count", "slides", "truncated"],
        "properties": {
            "path": {"type": "string"},
            "slide_count": {"type": "integer", "minimum": 0},
            "slides": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["slide", "title", "text", "notes"],
                    "properties": {
                        "slide": {"type": "integer", "minimum": 1},
                        "title": {"type": "string"},
                        "text": {"type": "array", "items": {"type": "string"}},
                        "notes": {"type": "string"},
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

PPTX_CREATE = ToolSpec(
    id="pptx:create",
    title="Create a PowerPoint (PPTX) file",
    description=(
        "Create a .pptx presentation in your files: an optional title slide (title, subtitle), "
        "then one slide per entry of slides with a title, bullets (text, or {text, level} with "
        "level 0-4 to indent) and speaker notes. Returns the file's path and size."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "slides"],
        "properties": {
            "path": {**fields.PATH, "pattern": r"(?i)\.pptx$"},
            "title": {**_TEXT, "description": "Title of the opening title slide."},
            "subtitle": {**_TEXT, "description": "Subtitle of the title slide."},
            "slides": {
                "type": "array",
                "maxItems": PPTX_MAX_SLIDES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["title"],
                    "properties": {
                        "title": _TEXT,
                        "bullets": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {
                                "anyOf": [
                                    _TEXT,
                                    {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["text"],
                                        "properties": {
                                            "text": _TEXT,
                                            "level": {
                                                "type": "integer",
                                                "minimum": 0,
                                                "maximum": 4,
                                            },
                                        },
                                    },
                                ]
                            },
                        },
                        "notes": {"type": "string", "maxLength": 100_000},
                    },
                },
            },
            "overwrite": fields.OVERWRITE,
        },
    },
    output_schema=fields.created_file(slides={"type": "integer", "minimum": 0}),
    run=_run_create,
    effect=Effect.WRITE,
    timeout_s=TIMEOUT_S,
)
