"""JSON Schema (2020-12) checks shared by the registry and the API edges."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from pasar_core.errors import ValidationFailed

MAX_REPORTED_ERRORS = 20
MAX_REMEMBERED_SCHEMA_CHARS = 16_384
ModelT = TypeVar("ModelT", bound=BaseModel)


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema 2020-12 document, or None when it is.

    Checking against the metaschema costs about 5 ms a schema (a registry of 33 tools spent
    0.35 s of every start on it), so the answers for small schemas are remembered by text."""
    try:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON: let the metaschema say what is wrong
        return _check(schema)
    if len(text) > MAX_REMEMBERED_SCHEMA_CHARS:
        return _check(schema)
    return _remembered_check(text)


@functools.lru_cache(maxsize=1024)
def _remembered_check(text: str) -> str | None:
    return _check(json.loads(text))


def _check(schema: Mapping[str, Any]) -> str | None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return str(error.message)
    return None


def validation_errors(validator: Draft202012Validator, instance: Any) -> list[dict[str, str]]:
    """Every way `instance` misses the schema, as `{path, message}` pairs (bounded)."""
    found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    return [
        {"path": "/" + "/".join(str(part) for part in error.path), "message": error.message}
        for error in found[:MAX_REPORTED_ERRORS]
    ]


def parse_model(
    model: type[ModelT], data: Any, *, what: str = "input", strict: bool = False
) -> ModelT:
    """Validate `data` into `model`, turning pydantic's errors into one `ValidationFailed`.

    `strict` (bodies a client sent as JSON): pydantic's strict JSON mode, so a value is taken
    only as the type its JSON Schema names (no `"5"` or `true` for an integer), as the OpenAPI
    document says."""
    nul_path = _nul_character_path(data)
    if nul_path is not None:
        nul_path = nul_path.replace("\x00", "\\u0000")  # shown, never echoed: nothing stores NUL
        # PostgreSQL text cannot hold U+0000: refuse it here, for every surface at once.
        raise ValidationFailed(
            f"invalid {what}: {nul_path}: text must not contain NUL characters",
            details={"errors": [{"path": nul_path, "message": "contains a NUL character"}]},
        )
    try:
        if strict:
            return model.model_validate_json(json.dumps(data), strict=True)
        return model.model_validate(data)
    except PydanticValidationError as error:
        problems = [
            {"path": "/" + "/".join(str(part) for part in item["loc"]), "message": item["msg"]}
            for item in error.errors(include_url=False, include_input=False)[:MAX_REPORTED_ERRORS]
        ]
        first = problems[0] if problems else {"path": "/", "message": "invalid"}
        raise ValidationFailed(
            f"invalid {what}: {first['path']}: {first['message']}", details={"errors": problems}
        ) from None


def _nul_character_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return (path or "/") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}/{key}"
            if isinstance(key, str) and "\x00" in key:
                return child
            found = _nul_character_path(item, child)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_character_path(item, f"{path}/{index}")
            if found:
                return found
    return None
