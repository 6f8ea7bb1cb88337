"""The files tools' typed errors."""

from __future__ import annotations

from pasar_core.errors import ToolError


class FileLimitExceeded(ToolError):
    """A file goes past one of the read limits (`limit` names which, `max` its value)."""

    code = "FILE_LIMIT_EXCEEDED"

    def __init__(self, shown: str, message: str, *, limit: str, maximum: int) -> None:
        super().__init__(
            f"{shown!r}: {message}", details={"path": shown, "limit": limit, "max": maximum}
        )
