"""Turn a user's relative path into a real path that is guaranteed to lie under their root."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from pasar_core.errors import ToolError

from pasar_files.limits import MAX_PATH_CHARS

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(relative: str) -> str:
    """A short, printable rendering of untrusted input for error messages."""
    return repr(relative[:80] + ("..." if len(relative) > 80 else ""))


def check_relative_path(relative: str) -> str:
    """Lexical checks only; returns the normalised relative path (`a//./b` -> `a/b`)."""
    if not relative:
        raise ToolError("path must not be empty")
    if len(relative) > MAX_PATH_CHARS:
        raise ToolError(f"path is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in relative:
        raise ToolError("path must not contain NUL bytes")
    if _CONTROL.search(relative):
        raise ToolError(f"path {_shown(relative)} contains control characters")
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("path is not valid Unicode text") from None
    if relative.startswith(("\\\\", "//")):
        raise ToolError(f"path {_shown(relative)} is a network (UNC) path; use a relative path")
    if relative.startswith(("/", "\\")) or _DRIVE.match(relative):
        raise ToolError(f"path {_shown(relative)} is absolute; use a path relative to your files")
    if "\\" in relative:
        raise ToolError(f"path {_shown(relative)} contains a backslash; separate folders with '/'")
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ToolError(f"path {_shown(relative)} must not contain '..'")
    if not parts:
        raise ToolError(f"path {_shown(relative)} does not name a file")
    return str(PurePosixPath(*parts))


def resolve_user_path(root: Path, relative: str) -> Path:
    """The real path (symlinks followed) of `relative` under `root`; ToolError if it escapes.

    Follows symlinks in every existing component, so a not-yet-existing file under a symlinked
    folder is judged by where the folder really is. This check alone is racy; open files with
    `pasar_files.fs`, which re-walks the returned real path without following any symlink.
    """
    normalised = check_relative_path(relative)
    try:
        real_root = Path(os.path.realpath(root))
        target = Path(os.path.realpath(real_root / normalised))
    except (OSError, ValueError):
        raise ToolError(f"path {_shown(relative)} cannot be resolved") from None
    if not target.is_relative_to(real_root):
        raise ToolError(f"path {_shown(relative)} points outside your files (through a symlink)")
    return target
