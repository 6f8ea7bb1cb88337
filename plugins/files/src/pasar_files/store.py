"""The object store as the files tools see it: per-user keys, ToolErrors the model can read.

Every files tool reads and writes through here, so all of them see the same files: the local
folder (`<data dir>/files/<user id>/`, the context's storage root) or the S3 bucket. The path
guard is the store's `normalise_key`; the local store never follows a symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
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

from pasar_files.limits import APPEND_MAX_BYTES, MIB


def store_of(ctx: ToolContext) -> ObjectStore:
    """The context's store, or a local store over its storage root."""
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


def _local_reason(root: Path, key: str) -> str | None:
    """Why the local folder holds no regular file at `key` (the store only says it is missing).

    Walks real folders only (`lstat`, stopping at the first symlink), so it never looks outside
    the user's root; the answer names only the key.
    """
    path = root
    parts = key.split("/")
    mode = 0
    for depth, name in enumerate(parts, 1):
        path = path / name
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return f"{key!r} goes through a symlink, which the files tools do not follow"
        if depth < len(parts) and not stat.S_ISDIR(mode):
            return f"part of {key!r} is not a folder"
    if stat.S_ISDIR(mode):
        return f"{key!r} is a folder, not a file"
    if not stat.S_ISREG(mode):
        return f"{key!r} is not a regular file"
    return None


async def _reason(ctx: ToolContext, key: str) -> str | None:
    """A clearer message than the store's for a missing or unstorable key, when there is one."""
    store = store_of(ctx)
    try:
        if isinstance(store, LocalObjectStore):
            return await asyncio.to_thread(_local_reason, store.root_of(ctx.user_id), key)
        if await store.list(ctx.user_id, f"{key}/", limit=1):
            return f"{key!r} is a folder, not a file"
    except PasarError:
        pass
    return None


async def _failure(ctx: ToolContext, key: str, error: PasarError) -> ToolError:
    """The ToolError for a failed read or write of `key`."""
    if isinstance(error, ObjectNotFound | InvalidObjectKey):
        reason = await _reason(ctx, key)
        if reason is not None:
            return ToolError(reason, details={"path": key})
    return tool_error(error)


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
        raise await _failure(ctx, key, error) from None
    return key, data


async def read_head(ctx: ToolContext, path: str, *, max_bytes: int) -> tuple[str, int, bytes]:
    """(normalised key, full size, first bytes) of a user's file; at most `max_bytes` of them."""
    key = checked_key(path)
    chunks: list[bytes] = []
    got = 0
    try:
        stream = await store_of(ctx).open(ctx.user_id, key)
        body = stream.__aiter__()
        try:
            async for chunk in body:
                chunks.append(chunk)
                got += len(chunk)
                if got >= max_bytes:
                    break
        finally:
            if isinstance(body, AsyncGenerator):  # stopped early: finish it now, not at GC
                await body.aclose()
            await stream.aclose()
    except PasarError as error:
        raise await _failure(ctx, key, error) from None
    return key, stream.info.size, b"".join(chunks)[:max_bytes]


async def read_for_append(ctx: ToolContext, key: str, *, adding: int) -> bytes:
    """The current bytes of `key` (empty when missing), refusing to grow it past the append cap."""
    try:
        return await store_of(ctx).get(ctx.user_id, key, max_bytes=APPEND_MAX_BYTES - adding)
    except ObjectNotFound:
        return b""
    except ObjectTooLarge:
        raise ToolError(
            f"appending would make {key!r} larger than {APPEND_MAX_BYTES // MIB} MiB; "
            "write to a new file",
            details={"path": key},
        ) from None
    except PasarError as error:
        raise await _failure(ctx, key, error) from None


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
    """Store a file (creating or replacing it); returns the fields `path` and `size_bytes`."""
    try:
        info = await store_of(ctx).put(ctx.user_id, key, data)
    except PasarError as error:
        raise await _failure(ctx, key, error) from None
    return {"path": info.key, "size_bytes": info.size}
