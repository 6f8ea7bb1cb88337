"""Per-user object storage: where tools keep the files they read and create, and downloads read.

An `ObjectStore` holds bytes under `(user_id, key)`. Keys are relative paths (`reports/q1.pdf`)
checked by `normalise_key`, the same rules as the files tools' path guard. Users never share a
namespace: a key is always resolved inside its user's space, so another user's file is simply
missing. `LocalObjectStore` (the default) keeps files in `<data dir>/files/<user id>/`, the folder
the TXT/CSV tools use; `S3ObjectStore` keeps them in an S3-compatible bucket as `<user id>/<key>`.

Local storage never follows a symlink: every folder is opened with `O_NOFOLLOW` relative to its
parent's descriptor, and writes go to a temporary file that is renamed into place.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import contextlib
import errno
import logging
import os
import re
import secrets
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pasar_core.errors import BadRequest, NotFound, PasarError, PayloadTooLarge, StartupError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pasar_core.settings import Settings

log = logging.getLogger("pasar.objects")

MAX_KEY_CHARS = 1024
CHUNK_BYTES = 64 * 1024
MAX_LIST_LIMIT = 10_000
MAX_LIST_SCAN = 100_000
TEMP_PREFIX = ".pasar-tmp-"

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class InvalidObjectKey(BadRequest):
    code = "INVALID_OBJECT_KEY"


class ObjectNotFound(NotFound):
    code = "OBJECT_NOT_FOUND"


class ObjectTooLarge(PayloadTooLarge):
    code = "OBJECT_TOO_LARGE"


class ObjectStoreUnavailable(PasarError):
    code = "OBJECT_STORE_UNAVAILABLE"
    status = 503


def _shown(key: str) -> str:
    """A short, printable rendering of untrusted input for error messages."""
    return repr(key[:80] + ("..." if len(key) > 80 else ""))


def normalise_key(key: str) -> str:
    """Lexical checks only; returns the normalised key (`a//./b` -> `a/b`)."""
    if not key:
        raise InvalidObjectKey("path must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidObjectKey(f"path is longer than {MAX_KEY_CHARS} characters")
    if "\x00" in key:
        raise InvalidObjectKey("path must not contain NUL bytes")
    if _CONTROL.search(key):
        raise InvalidObjectKey(f"path {_shown(key)} contains control characters")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidObjectKey("path is not valid Unicode text") from None
    if key.startswith(("\\\\", "//")):
        raise InvalidObjectKey(f"path {_shown(key)} is a network (UNC) path; use a relative path")
    if key.startswith(("/", "\\")) or _DRIVE.match(key):
        raise InvalidObjectKey(f"path {_shown(key)} is absolute; use a path relative to your files")
    if "\\" in key:
        raise InvalidObjectKey(
            f"path {_shown(key)} contains a backslash; separate folders with '/'"
        )
    parts = [part for part in key.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidObjectKey(f"path {_shown(key)} must not contain '..'")
    if not parts:
        raise InvalidObjectKey(f"path {_shown(key)} does not name a file")
    return str(PurePosixPath(*parts))


def check_prefix(prefix: str) -> str:
    """A listing filter: plain text compared with keys, so only length and characters matter."""
    if len(prefix) > MAX_KEY_CHARS or _CONTROL.search(prefix) or "\\" in prefix:
        raise InvalidObjectKey("prefix must be a short path start without control characters")
    return prefix


def check_user_id(user_id: str) -> str:
    if not _USER_ID.match(user_id):
        raise InvalidObjectKey("user id must be letters, digits, '-' and '_'")
    return user_id


def _not_found(key: str) -> ObjectNotFound:
    return ObjectNotFound(f"{key!r} does not exist", details={"path": key})


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStream:
    """An opened object: `info`, then its bytes in chunks; `aclose()` is safe to call twice."""

    def __init__(
        self,
        info: ObjectInfo,
        read: Callable[[int], bytes],
        close: Callable[[], None],
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.info = info
        self._read, self._close, self._chunk = read, close, chunk_bytes
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await asyncio.to_thread(self._read, self._chunk)
                if not chunk:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._close)


@runtime_checkable
class ObjectStore(Protocol):
    """Async per-user storage of whole objects. Every method validates the key first."""

    async def put(self, user_id: str, key: str, data: bytes) -> ObjectInfo:
        """Create or replace an object (atomically: readers see the old or the new bytes)."""

    async def get(self, user_id: str, key: str, *, max_bytes: int) -> bytes:
        """The whole object; `ObjectTooLarge` when it exceeds `max_bytes`."""

    async def stat(self, user_id: str, key: str) -> ObjectInfo:
        """Size and modification time; `ObjectNotFound` when missing."""

    async def list(
        self, user_id: str, prefix: str = "", *, limit: int = 1000
    ) -> builtins.list[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key, at most `limit`."""

    async def delete(self, user_id: str, key: str) -> bool:
        """Remove an object; False when there was none."""

    async def open(self, user_id: str, key: str) -> ObjectStream:
        """Open an object for streaming (downloads)."""


# --- local directory -----------------------------------------------------------------------

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC))


class BlockingObjectStore(abc.ABC):
    """An `ObjectStore` over blocking operations, each run in a worker thread."""

    async def put(self, user_id: str, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._put, user_id, key, data)

    async def get(self, user_id: str, key: str, *, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self._get, user_id, key, max_bytes)

    async def stat(self, user_id: str, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat, user_id, key)

    async def list(
        self, user_id: str, prefix: str = "", *, limit: int = 1000
    ) -> builtins.list[ObjectInfo]:
        return await asyncio.to_thread(self._list, user_id, prefix, min(limit, MAX_LIST_LIMIT))

    async def delete(self, user_id: str, key: str) -> bool:
        return await asyncio.to_thread(self._delete, user_id, key)

    async def open(self, user_id: str, key: str) -> ObjectStream:
        return await asyncio.to_thread(self._open, user_id, key)

    @abc.abstractmethod
    def _put(self, user_id: str, key: str, data: bytes) -> ObjectInfo: ...

    @abc.abstractmethod
    def _get(self, user_id: str, key: str, max_bytes: int) -> bytes: ...

    @abc.abstractmethod
    def _stat(self, user_id: str, key: str) -> ObjectInfo: ...

    @abc.abstractmethod
    def _list(self, user_id: str, prefix: str, limit: int) -> builtins.list[ObjectInfo]: ...

    @abc.abstractmethod
    def _delete(self, user_id: str, key: str) -> bool: ...

    @abc.abstractmethod
    def _open(self, user_id: str, key: str) -> ObjectStream: ...


class LocalObjectStore(BlockingObjectStore):
    """Objects as files under `base/<user id>/` (or under a given root for a single user)."""

    def __init__(self, base: Path, *, roots: Callable[[str], Path] | None = None) -> None:
        self.base = base
        self._roots = roots

    @classmethod
    def single_user(cls, user_id: str, root: Path) -> LocalObjectStore:
        """A store over one user's existing root (what a bare `ToolContext.storage_root` gives)."""

        def root_of(asked: str) -> Path:
            if asked != user_id:
                raise InvalidObjectKey("this store belongs to another user")
            return root

        return cls(root.parent, roots=root_of)

    def root_of(self, user_id: str) -> Path:
        if self._roots is not None:
            return self._roots(user_id)
        return self.base / check_user_id(user_id)

    def _root_fd(self, user_id: str, *, create: bool) -> int | None:
        root = self.root_of(user_id)
        try:
            if create:
                root.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:
            raise ObjectStoreUnavailable("file storage is not available") from None

    def _parent_fd(self, user_id: str, key: str, *, create: bool) -> tuple[int, str] | None:
        """The open folder holding `key` and the key's last name; None when a folder is missing."""
        parts = key.split("/")
        if parts[-1].startswith(TEMP_PREFIX):
            raise InvalidObjectKey(f"names starting with {TEMP_PREFIX!r} are reserved")
        fd = self._root_fd(user_id, create=create)
        if fd is None:
            return None
        try:
            for name in parts[:-1]:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=fd)
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = next_fd
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP) and not create:
                return None
            raise self._failure(error, key) from None
        return fd, parts[-1]

    @staticmethod
    def _failure(error: OSError, key: str) -> PasarError:
        code = error.errno
        if code in (errno.ENOTDIR, errno.ELOOP, errno.EEXIST):
            return InvalidObjectKey(f"{key!r} cannot be stored: part of it is a file, not a folder")
        if code == errno.EISDIR:
            return InvalidObjectKey(f"{key!r} is a folder, not a file")
        if code == errno.ENAMETOOLONG:
            return InvalidObjectKey(f"a name in {key!r} is too long")
        if code in (errno.ENOSPC, errno.EDQUOT):
            return ObjectStoreUnavailable(f"no space left to store {key!r}")
        return ObjectStoreUnavailable(f"{key!r} could not be stored or read")

    def _open_read(self, user_id: str, key: str) -> int:
        found = self._parent_fd(user_id, key, create=False)
        if found is None:
            raise _not_found(key)
        dir_fd, name = found
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
                raise _not_found(key) from None
            raise self._failure(error, key) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_found(key)
        return fd

    def _put(self, user_id: str, key: str, data: bytes) -> ObjectInfo:
        key = normalise_key(key)
        found = self._parent_fd(user_id, key, create=True)
        assert found is not None
        dir_fd, name = found
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(temp, _TEMP_FLAGS, 0o600, dir_fd=dir_fd)
            try:
                with open(fd, "wb", closefd=False) as handle:
                    handle.write(data)
                info = _info(key, os.fstat(fd))
            finally:
                os.close(fd)
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise self._failure(error, key) from None
        finally:
            os.close(dir_fd)
        return info

    def _get(self, user_id: str, key: str, max_bytes: int) -> bytes:
        key = normalise_key(key)
        with open(self._open_read(user_id, key), "rb") as handle:
            if os.fstat(handle.fileno()).st_size > max_bytes:
                raise ObjectTooLarge(f"{key!r} is larger than {max_bytes} bytes")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ObjectTooLarge(f"{key!r} is larger than {max_bytes} bytes")
        return data

    def _stat(self, user_id: str, key: str) -> ObjectInfo:
        key = normalise_key(key)
        found = self._parent_fd(user_id, key, create=False)
        if found is None:
            raise _not_found(key)
        dir_fd, name = found
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            raise _not_found(key) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_found(key)
        return _info(key, st)

    def _list(self, user_id: str, prefix: str, limit: int) -> builtins.list[ObjectInfo]:
        prefix = check_prefix(prefix)
        root_fd = self._root_fd(user_id, create=False)
        if root_fd is None:
            return []
        found: builtins.list[ObjectInfo] = []
        try:
            for folder, dirnames, filenames, dir_fd in os.fwalk(
                ".", dir_fd=root_fd, follow_symlinks=False
            ):
                base = folder[2:] if folder.startswith("./") else ""
                here = [f"{base}/{name}" if base else name for name in dirnames]
                dirnames[:] = [
                    name
                    for name, sub in zip(dirnames, here, strict=True)
                    if sub.startswith(prefix) or prefix.startswith(sub + "/")
                ]
                for name in filenames:
                    key = f"{base}/{name}" if base else name
                    if name.startswith(TEMP_PREFIX) or not key.startswith(prefix):
                        continue
                    try:
                        if normalise_key(key) != key:
                            continue
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except (InvalidObjectKey, OSError):
                        continue
                    if stat.S_ISREG(st.st_mode):
                        found.append(_info(key, st))
                if len(found) >= MAX_LIST_SCAN:
                    break
        finally:
            os.close(root_fd)
        found.sort(key=lambda info: info.key)
        return found[:limit]

    def _delete(self, user_id: str, key: str) -> bool:
        key = normalise_key(key)
        found = self._parent_fd(user_id, key, create=False)
        if found is None:
            return False
        dir_fd, name = found
        try:
            if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return False
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise self._failure(error, key) from None
        finally:
            os.close(dir_fd)
        return True

    def _open(self, user_id: str, key: str) -> ObjectStream:
        key = normalise_key(key)
        handle = open(self._open_read(user_id, key), "rb")  # noqa: SIM115 (closed by the stream)
        info = _info(key, os.fstat(handle.fileno()))
        return ObjectStream(info, handle.read, handle.close)


# --- S3-compatible -------------------------------------------------------------------------


class S3ObjectStore(BlockingObjectStore):
    """Objects in one S3-compatible bucket as `<user id>/<key>` (boto3, run in worker threads)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _name(self, user_id: str, key: str) -> str:
        return f"{check_user_id(user_id)}/{key}"

    def _call(self, key: str, action: Callable[[], Any]) -> Any:
        """Run one client call, mapping 404s to ObjectNotFound and the rest to unavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except ClientError as error:
            response: Any = error.response
            code = str(response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise _not_found(key) from None
            log.warning("S3 request for %r failed: %s", key, code)
            raise ObjectStoreUnavailable("object storage refused the request") from None
        except BotoCoreError as error:
            log.warning("S3 request for %r failed: %s", key, type(error).__name__)
            raise ObjectStoreUnavailable("object storage is not available") from None

    def _put(self, user_id: str, key: str, data: bytes) -> ObjectInfo:
        key = normalise_key(key)
        name = self._name(user_id, key)
        self._call(key, lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=data))
        return ObjectInfo(key=key, size=len(data), modified=datetime.now(UTC))

    def _get(self, user_id: str, key: str, max_bytes: int) -> bytes:
        key = normalise_key(key)
        name = self._name(user_id, key)
        response = self._call(key, lambda: self._client.get_object(Bucket=self.bucket, Key=name))
        body = response["Body"]
        try:
            if int(response.get("ContentLength", 0)) > max_bytes:
                raise ObjectTooLarge(f"{key!r} is larger than {max_bytes} bytes")
            data: bytes = self._call(key, lambda: body.read(max_bytes + 1))
        finally:
            body.close()
        if len(data) > max_bytes:
            raise ObjectTooLarge(f"{key!r} is larger than {max_bytes} bytes")
        return data

    def _stat(self, user_id: str, key: str) -> ObjectInfo:
        key = normalise_key(key)
        name = self._name(user_id, key)
        head = self._call(key, lambda: self._client.head_object(Bucket=self.bucket, Key=name))
        return ObjectInfo(key=key, size=int(head["ContentLength"]), modified=head["LastModified"])

    def _list(self, user_id: str, prefix: str, limit: int) -> builtins.list[ObjectInfo]:
        prefix = check_prefix(prefix)
        start = f"{check_user_id(user_id)}/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start + prefix
        )
        found: builtins.list[ObjectInfo] = []
        iterator = iter(pages)
        while len(found) < limit:
            page = self._call(prefix, lambda: next(iterator, None))
            if page is None:
                break
            for item in page.get("Contents", []):
                key = item["Key"][len(start) :]
                try:
                    if normalise_key(key) != key:
                        continue
                except InvalidObjectKey:
                    continue
                found.append(ObjectInfo(key, int(item["Size"]), item["LastModified"]))
        return found[:limit]

    def _delete(self, user_id: str, key: str) -> bool:
        try:
            self._stat(user_id, key)
        except ObjectNotFound:
            return False
        name = self._name(user_id, normalise_key(key))
        self._call(key, lambda: self._client.delete_object(Bucket=self.bucket, Key=name))
        return True

    def _open(self, user_id: str, key: str) -> ObjectStream:
        key = normalise_key(key)
        name = self._name(user_id, key)
        response = self._call(key, lambda: self._client.get_object(Bucket=self.bucket, Key=name))
        body = response["Body"]
        info = ObjectInfo(key, int(response["ContentLength"]), response["LastModified"])
        return ObjectStream(info, lambda size: self._call(key, lambda: body.read(size)), body.close)


def build_object_store(settings: Settings) -> ObjectStore:
    """S3 when `PASAR_S3_BUCKET` is set, else the local folder `<data dir>/files`."""
    if settings.s3_bucket:
        return S3ObjectStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    if settings.s3_endpoint_url:
        raise StartupError("PASAR_S3_ENDPOINT_URL is set but PASAR_S3_BUCKET is not")
    return LocalObjectStore(settings.files_root)
