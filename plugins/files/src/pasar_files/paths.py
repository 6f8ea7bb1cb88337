"""Turn a user's relative path into a real path that is guaranteed to lie under their root."""

from __future__ import annotations

import os
from pathlib import Path

from pasar_core.errors import ToolError
from pasar_core.objects import InvalidObjectKey, normalise_key


def _shown(relative: str) -> str:
    """A short, printable rendering of untrusted input for error messages."""
    return repr(relative[:80] + ("..." if len(relative) > 80 else ""))


def check_relative_path(relative: str) -> str:
    """Lexical checks only (the object store's key rules); returns the normalised path."""
    try:
        return normalise_key(relative)
    except InvalidObjectKey as error:
        raise ToolError(error.message) from None


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
