"""The `txt:read` and `txt:write` tools: plain text files in the user's object store."""

from __future__ import annotations

import asyncio
import codecs
from typing import Any

from pasar_core.errors import ToolError
from pasar_core.specs import Effect, ToolContext, ToolSpec

from pasar_files import fields
from pasar_files.limits import (
    APPEND_MAX_BYTES,
    MIB,
    TXT_READ_DEFAULT_BYTES,
    TXT_READ_MAX_BYTES,
    TXT_WRITE_MAX_BYTES,
)
from pasar_files.store import checked_key, read_for_append, read_head, save_object

ENCODINGS = (
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "ascii",
    "latin-1",
    "cp1252",
    "iso-8859-15",
    "shift_jis",
    "euc-jp",
    "gb18030",
    "big5",
    "euc-kr",
    "koi8-r",
)


def decode_text(data: bytes, shown: str, *, max_bytes: int, encoding: str) -> tuple[str, bool]:
    """(text, truncated) of the first `max_bytes` of `data`; never splits a character at the cut."""
    truncated = len(data) > max_bytes
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        content = decoder.decode(data[:max_bytes], final=not truncated)
    except UnicodeDecodeError as error:
        raise ToolError(
            f"{shown!r} is not valid {encoding} text (bad byte at offset {error.start}); "
            "it may be a binary file or use another encoding",
            details={"path": shown},
        ) from None
    if "\x00" in content:
        raise ToolError(
            f"{shown!r} looks like a binary file (it contains NUL bytes)", details={"path": shown}
        )
    return content, truncated


def encode_text(content: str) -> bytes:
    """UTF-8 bytes of `content`, at most TXT_WRITE_MAX_BYTES of them."""
    try:
        encoded = content.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("content is not valid Unicode text (lone surrogate)") from None
    if len(encoded) > TXT_WRITE_MAX_BYTES:
        raise ToolError(
            f"content is {len(encoded)} bytes; the limit is {TXT_WRITE_MAX_BYTES // MIB} MiB"
        )
    return encoded


async def _run_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    max_bytes = args.get("max_bytes", TXT_READ_DEFAULT_BYTES)
    key, size, data = await read_head(ctx, args["path"], max_bytes=max_bytes + 1)
    content, truncated = await asyncio.to_thread(
        decode_text, data, key, max_bytes=max_bytes, encoding=args.get("encoding", "utf-8")
    )
    return {"path": key, "content": content, "size_bytes": size, "truncated": truncated}


async def _run_write(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Write (or append) UTF-8 text; an append stores the old bytes and the new ones together."""
    key = checked_key(args["path"])
    encoded = encode_text(args["content"])
    data = encoded
    if args.get("mode", "overwrite") == "append":
        data = await read_for_append(ctx, key, adding=len(encoded)) + encoded
    saved = await save_object(ctx, key, data)
    return {"path": saved["path"], "bytes_written": len(encoded)}


TXT_READ = ToolSpec(
    id="txt:read",
    title="Read a text file",
    description=(
        "Read a text file from your files folder. Returns its content, its full size in bytes "
        "and whether the content was cut at max_bytes (default 1 MiB, at most 10 MiB). "
        "Fails on binary files or text that does not match the encoding (default utf-8)."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": fields.PATH,
            "max_bytes": {
                "type": "integer",
                "minimum": 1,
                "maximum": TXT_READ_MAX_BYTES,
                "default": TXT_READ_DEFAULT_BYTES,
                "description": "Read at most this many bytes (default 1 MiB, at most 10 MiB).",
            },
            "encoding": {
                "type": "string",
                "enum": list(ENCODINGS),
                "default": "utf-8",
                "description": "Text encoding of the file.",
            },
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "content", "size_bytes", "truncated"],
        "properties": {
            "path": {"type": "string"},
            "content": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean"},
        },
    },
    run=_run_read,
    effect=Effect.READ,
    timeout_s=30.0,
)

TXT_WRITE = ToolSpec(
    id="txt:write",
    title="Write a text file",
    description=(
        "Write UTF-8 text to a file in your files folder, creating folders as needed. "
        "mode 'overwrite' (default) replaces the file, 'append' adds to its end. "
        f"Content is limited to 10 MiB per call; an append may grow a file to "
        f"{APPEND_MAX_BYTES // MIB} MiB."
    ),
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "content"],
        "properties": {
            "path": fields.PATH,
            "content": {
                "type": "string",
                "maxLength": TXT_WRITE_MAX_BYTES,
                "description": "The text to write (at most 10 MiB as UTF-8).",
            },
            "mode": fields.MODE,
        },
    },
    output_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "bytes_written"],
        "properties": {
            "path": {"type": "string"},
            "bytes_written": {"type": "integer", "minimum": 0},
        },
    },
    run=_run_write,
    effect=Effect.WRITE,
    timeout_s=30.0,
)
