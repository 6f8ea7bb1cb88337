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

OVERWRITE: dict[str, Any] = {
    "type": "boolean",
    "default": True,
    "description": "Replace the file if it exists (default true); false fails instead.",
}


def created_file(**extra: dict[str, Any]) -> dict[str, Any]:
    """Output schema of a tool that creates a file: its path, size, and `extra` fields."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "size_bytes", *extra],
        "properties": {
            "path": {"type": "string", "description": "The created file's path (its key)."},
            "size_bytes": {"type": "integer", "minimum": 0},
            **extra,
        },
    }


def read_input(**extra: dict[str, Any]) -> dict[str, Any]:
    """Input schema of a read tool: `path` plus `extra` optional fields."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {"path": PATH, **extra},
    }
