"""JSON Schema fragments shared by the files tools."""

from __future__ import annotations

from typing import Any

from pasar_files.limits import MAX_PATH_CHARS

PATH: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PATH_CHARS,
    "description": "Path relative to your files folder, with '/' between folders, e.g. "
    "'notes/todo.txt'. No leading '/', no '..', no backslashes.",
}

MODE: dict[str, Any] = {
    "type": "string",
    "enum": ["overwrite", "append"],
    "default": "overwrite",
    "description": "'overwrite' replaces the file; 'append' adds to its end.",
}

DELIMITER: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1,
    "pattern": '^[^"\\r\\n]$',
    "default": ",",
    "description": "The one-character field separator, e.g. ',', ';' or a tab.",
}
