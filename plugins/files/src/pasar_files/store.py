"""The object store as the files tools see it: per-user keys, ToolErrors the model can read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pasar_core.errors import PasarError, ToolError
from pasar_core.objects import (
    InvalidObjectKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    normalise_key,
)
from pasar_core.specs import ToolContext

from pasar_files.limits import MIB


def store_of(ctx: ToolContext) -> ObjectStore:
    """The context's store, or a local store over its storage root (the TXT/CSV folder)."""
    if ctx.objects is not None:
        return ctx.objects
    return LocalObjectStore.single_user(ctx.user_id, ctx.storage_root)


def tool_error(error: PasarError) -> ToolError:
    """The ToolError the model reads for an object-store error."""
    if isinstance(error, ToolError):
        return error
    if isinstance(error, InvalidObjectKey | ObjectNotFound | ObjectTooLarge):
        return ToolError(error.message, details=error.details)
    return ToolError(f"file storage failed: {error.message}")


@contextlib.contextmanager
def as_tool_errors() -> Iterator[None]:
    """Object-store errors become ToolErrors with the same message."""
    try:
        yield
    except PasarError as error:
        raise tool_error(error) from None


def checked_key(path: str, extension: str | None = None) -> str:
    """The normalised key; with `extension`, the key must end with it (case-insensitive)."""
    with as_tool_errors():
        key = normalise_key(path)
    if extension and not key.lower().endswith(extension):
        raise ToolError(f"path {key[:80]!r} must end with {extension}")
    return key


async def read_object(ctx: ToolContext, path: str, *, max_bytes: int) -> tuple[str, bytes]:
    """(normalised key, bytes) of a user's file no larger than `max_bytes`."""
    key = checked_key(path)
    try:
        data = await store_of(ctx).get(ctx.user_id, key, max_bytes=max_bytes)
    except ObjectTooLarge:
        raise ToolError(
            f"{key!r} is larger than {max_bytes // MIB} MiB, the most this tool reads",
            details={"path": key},
        ) from None
    except PasarError as error:
        raise tool_error(error) from None
    return key, data


async def ensure_writable(ctx: ToolContext, key: str, *, overwrite: bool) -> None:
    """Refuse to replace an existing file unless `overwrite`."""
    if overwrite:
        return
    with as_tool_errors():
        try:
            await store_of(ctx).stat(ctx.user_id, key)
        except ObjectNotFound:
            return
    raise ToolError(f"{key!r} already exists; pass overwrite=true to replace it")


async def save_object(ctx: ToolContext, key: str, data: bytes) -> dict[str, Any]:
    """Store a created file; returns the tool output fields `path` and `size_bytes`."""
    with as_tool_errors():
        info = await store_of(ctx).put(ctx.user_id, key, data)
    return {"path": info.key, "size_bytes": info.size}
