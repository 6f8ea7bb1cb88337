"""Text a terminal shows as text: control and format characters (newlines, escapes, direction
marks) found in user-chosen names, and their escaped form."""

from __future__ import annotations

import unicodedata

UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode categories a terminal may obey (controls, format marks, line and paragraph breaks)."""


def unprintable(text: str) -> str | None:
    """The first control or format character in `text`, None if there is none."""
    return next((char for char in text if unicodedata.category(char) in UNPRINTABLE), None)


def printable(text: str) -> str:
    """`text` with every control or format character escaped (`\\n`, `\\x1b`, `\\u202e`): a
    user-chosen name printed to a terminal can neither draw a line of its own nor send escapes."""
    if unprintable(text) is None:
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in UNPRINTABLE else char
        for char in text
    )  # fmt: skip
