"""Key files in the data dir, created once and atomically.

Several processes may start at once on a fresh data dir (`pasar serve --workers N`, two
commands side by side). Each writes its candidate to a private temporary file and links it to
the final name: the link either appears with complete contents or fails because another process
got there first, whose file is then read. No process ever reads a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def create_once(path: Path, contents: str) -> str:
    """The contents of `path`, creating it (mode 0600) with `contents` if it does not exist."""
    if path.exists():
        return path.read_text()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(contents)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text()
