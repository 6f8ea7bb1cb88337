"""Open files under a user's root so that no symlink, even one swapped in late, can escape it.

`resolve_user_path` gives the real path, in which no component is a symlink. We then walk that
path from the root one directory at a time with `O_NOFOLLOW` (`openat` style), so a component
replaced by a symlink after the check makes the open fail instead of leaving the root.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from pathlib import Path

from pasar_core.errors import ToolError

from pasar_files.paths import check_relative_path, resolve_user_path

DIR_MODE = 0o700
FILE_MODE = 0o600

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: opening a FIFO must not hang the worker; we refuse non-regular files after fstat.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC


def ensure_root(root: Path) -> None:
    """Create the user's storage root if the core has not yet."""
    try:
        root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError:
        raise ToolError("your file storage is not available") from None


def _failure(error: OSError, shown: str) -> ToolError:
    """A message naming only the user's relative path, never a server path."""
    code = error.errno
    if code == errno.ENOENT:
        message = f"{shown!r} does not exist"
    elif code == errno.ENOTDIR:
        message = f"part of {shown!r} is not a folder (or changed while it was opened)"
    elif code == errno.EISDIR:
        message = f"{shown!r} is a folder, not a file"
    elif code == errno.ELOOP:
        message = f"{shown!r} is a symlink loop or changed while it was opened"
    elif code == errno.ENAMETOOLONG:
        message = f"a name in {shown!r} is too long"
    elif code in (errno.EACCES, errno.EPERM):
        message = f"permission denied for {shown!r}"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        message = f"no space left to write {shown!r}"
    elif code == errno.ENXIO:
        message = f"{shown!r} is not a regular file"
    else:
        message = f"{shown!r} could not be opened ({errno.errorcode.get(code or 0, 'error')})"
    return ToolError(message, details={"path": shown})


def _open_leaf(root: Path, relative: str, flags: int, *, create_dirs: bool) -> int:
    """Open the final component of `relative` with `flags`; returns a regular file's descriptor."""
    shown = check_relative_path(relative)
    target = resolve_user_path(root, relative)
    real_root = Path(os.path.realpath(root))
    parts = target.relative_to(real_root).parts
    if not parts:
        raise ToolError(f"{shown!r} is a folder, not a file", details={"path": shown})
    try:
        dir_fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError:
        raise ToolError("your file storage is not available") from None
    try:
        for name in parts[:-1]:
            if create_dirs:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(parts[-1], flags, FILE_MODE, dir_fd=dir_fd)
    except OSError as error:
        raise _failure(error, shown) from None
    finally:
        os.close(dir_fd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder, not a file" if stat.S_ISDIR(mode) else "not a regular file"
        raise ToolError(f"{shown!r} is {kind}", details={"path": shown})
    return fd


def open_for_read(root: Path, relative: str) -> io.BufferedReader:
    """Open an existing regular file under `root` for reading."""
    return open(_open_leaf(root, relative, _READ_FLAGS, create_dirs=False), "rb")


def open_for_write(root: Path, relative: str, *, append: bool) -> io.BufferedRandom:
    """Open (creating it and its folders) a regular file under `root` for reading and writing.

    `append=False` truncates it; `append=True` makes every write land at the end.
    """
    flags = _WRITE_FLAGS | (os.O_APPEND if append else 0)
    fd = _open_leaf(root, relative, flags, create_dirs=True)
    if not append:
        try:
            os.ftruncate(fd, 0)
        except OSError as error:
            os.close(fd)
            raise _failure(error, check_relative_path(relative)) from None
    return open(fd, "r+b")
