"""JSON Schema rules for schemas users send (custom tools), and their validators.

A user's schema is checked before it is stored:

- against the 2020-12 metaschema (`$schema`, when given, must name 2020-12);
- self-contained: every `$ref` and `$dynamicRef` is a fragment of the schema itself (`#`,
  `#/$defs/x`, `#anchor`) that resolves; no `$id` (it would move the base URI) and no
  `$vocabulary`. Nothing is ever retrieved: validators get an empty `referencing` registry;
- bounded: at most `MAX_SCHEMA_BYTES` of JSON and `MAX_SCHEMA_DEPTH` levels of nesting;
- every `pattern` and `patternProperties` key compiles with RE2, the linear-time engine the
  validators then match with (`google-re2`). RE2 never backtracks, so `(a+)+$` costs time linear
  in the input instead of exponential; what RE2 cannot express without backtracking
  (backreferences, lookahead and lookbehind) is refused here, not at call time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import re2
import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator, ValidationError, validators
from referencing.jsonschema import DRAFT202012

from pasar_core.errors import (
    ToolSchemaInvalid,
    ToolSchemaPatternUnsupported,
    ToolSchemaRemoteRef,
    ToolSchemaTooLarge,
)
from pasar_core.schemas import schema_problem

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_PATTERN_CHARS = 2000
RE2_MAX_MEM = 4 * 1024 * 1024
METASCHEMA = "https://json-schema.org/draft/2020-12/schema"
_ROOT_URI = "urn:pasar:custom-tool-schema"

# Keywords whose value is a subschema, a map of subschemas, or a list of them (2020-12).
_ONE = ("not", "if", "then", "else", "items", "contains", "additionalProperties",
        "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")  # fmt: skip
_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas", "definitions")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's typed error, not a log line
    options.max_mem = RE2_MAX_MEM
    return options


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program for `pattern`; `re2.error` when RE2 cannot run it."""
    return re2.compile(pattern, options=_re2_options())


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        found = compile_pattern(pattern).search(instance)
    except re2.error:
        yield ValidationError(f"the pattern {pattern!r} cannot be matched")
        return
    if found is None:
        shown = instance if len(instance) <= 80 else instance[:80] + "..."
        yield ValidationError(f"{shown!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        try:
            program = compile_pattern(pattern)
        except re2.error:
            yield ValidationError(f"the pattern {pattern!r} cannot be matched")
            continue
        for key, value in instance.items():
            if program.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """`additionalProperties` with `patternProperties` matched by RE2 (jsonschema's own
    implementation matches them with Python's `re`)."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    leftover = [
        key
        for key in instance
        if key not in properties and not any(program.search(key) for program in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in leftover:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and leftover:
        names = ", ".join(repr(key) for key in sorted(leftover)[:20])
        yield ValidationError(f"additional properties are not allowed ({names} unexpected)")


UserSchemaValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
"""Draft 2020-12 with every regular expression matched by RE2."""


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator that never retrieves anything and matches patterns with RE2."""
    registry: referencing.Registry[Any] = referencing.Registry()
    validator: Draft202012Validator = UserSchemaValidator(schema, registry=registry)
    return validator


def _problem(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, stopping once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _subschemas(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    for keyword in _ONE:
        if keyword in schema:
            yield f"{path}/{keyword}", schema[keyword]
    for keyword in _MAP:
        children = schema.get(keyword)
        if isinstance(children, dict):
            for name, child in children.items():
                yield f"{path}/{keyword}/{name}", child
    for keyword in _LIST:
        children = schema.get(keyword)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield f"{path}/{keyword}/{index}", child


def _walk(schema: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every subschema object (with its JSON pointer) reachable through applicator keywords."""
    stack = [(path, schema)]
    while stack:
        where, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield where, node
        stack.extend(_subschemas(node, where))


def _ref_problems(
    where: str, node: Mapping[str, Any], root: bool
) -> Iterator[tuple[type[ToolSchemaInvalid | ToolSchemaRemoteRef], dict[str, str]]]:
    for keyword in ("$ref", "$dynamicRef"):
        ref = node.get(keyword)
        if isinstance(ref, str) and not ref.startswith("#"):
            yield (
                ToolSchemaRemoteRef,
                _problem(
                    f"{where}/{keyword}",
                    f"{ref[:200]!r} points outside the schema; only references into the schema "
                    "itself ('#/$defs/...') are allowed",
                ),
            )
    if "$id" in node:
        yield ToolSchemaRemoteRef, _problem(f"{where}/$id", "$id is not allowed")
    if "$vocabulary" in node:
        yield ToolSchemaRemoteRef, _problem(f"{where}/$vocabulary", "$vocabulary is not allowed")
    declared = node.get("$schema")
    if declared is not None and (not root or declared.rstrip("#") != METASCHEMA):
        yield (
            ToolSchemaRemoteRef,
            _problem(f"{where}/$schema", f"only {METASCHEMA} (at the root) is accepted"),
        )


def _pattern_problems(where: str, node: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    patterns: list[tuple[str, object]] = []
    if "pattern" in node:
        patterns.append((f"{where}/pattern", node["pattern"]))
    properties = node.get("patternProperties")
    if isinstance(properties, dict):
        patterns.extend((f"{where}/patternProperties/{key}", key) for key in properties)
    for pointer, pattern in patterns:
        if not isinstance(pattern, str):
            continue  # the metaschema reports it
        if len(pattern) > MAX_PATTERN_CHARS:
            yield _problem(pointer, f"longer than {MAX_PATTERN_CHARS} characters")
            continue
        try:
            compile_pattern(pattern)
        except re2.error as error:
            raw = error.args[0] if error.args else error
            reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            yield _problem(
                pointer,
                f"RE2, the linear-time engine patterns run on, cannot run it ({reason}); "
                "backreferences, lookahead and lookbehind are not supported",
            )


def check_user_schema(schema: Any, where: str) -> None:
    """Refuse `schema` (at JSON pointer `where` of the body) unless it follows every rule in the
    module docstring; each kind of problem has its own error code."""
    if not isinstance(schema, dict):
        raise ToolSchemaInvalid(
            f"{where} must be a JSON Schema object",
            details={"errors": [_problem(where, "must be an object")]},
        )
    size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())
    depth = _depth(schema, MAX_SCHEMA_DEPTH)
    if size > MAX_SCHEMA_BYTES or depth > MAX_SCHEMA_DEPTH:
        raise ToolSchemaTooLarge(
            f"{where} is too large: at most {MAX_SCHEMA_BYTES} bytes of JSON and "
            f"{MAX_SCHEMA_DEPTH} levels of nesting",
            details={"errors": [_problem(where, "too large")], "bytes": size,
                     "max_bytes": MAX_SCHEMA_BYTES, "max_depth": MAX_SCHEMA_DEPTH},
        )  # fmt: skip
    problem = schema_problem(schema)
    if problem:
        raise ToolSchemaInvalid(
            f"{where} is not valid JSON Schema 2020-12: {problem[:500]}",
            details={"errors": [_problem(where, problem[:500])]},
        )
    nodes = list(_walk(schema, where))
    nodes.extend(_referenced_nodes(schema, nodes, where))
    for node_path, node in nodes:
        for kind, found in _ref_problems(node_path, node, root=node_path == where):
            raise kind(f"{found['path']}: {found['message']}", details={"errors": [found]})
    _check_local_refs(schema, nodes)
    uses = {keyword for _path, node in nodes for keyword in node}
    if {"patternProperties", "unevaluatedProperties"} <= uses:
        # jsonschema evaluates patternProperties for unevaluatedProperties with Python's re.
        found = _problem(where, "patternProperties together with unevaluatedProperties")
        raise ToolSchemaPatternUnsupported(
            f"{where}: patternProperties cannot be combined with unevaluatedProperties in a "
            "custom tool's schema; use additionalProperties",
            details={"errors": [found]},
        )
    for node_path, node in nodes:
        for found in _pattern_problems(node_path, node):
            raise ToolSchemaPatternUnsupported(
                f"{found['path']}: {found['message']}", details={"errors": [found]}
            )


def _resolver(schema: Mapping[str, Any]) -> Any:  # referencing's Resolver
    resource = DRAFT202012.create_resource(schema)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(_ROOT_URI, resource)
    return registry.resolver(base_uri=_ROOT_URI)


def _referenced_nodes(
    schema: Mapping[str, Any], nodes: list[tuple[str, Mapping[str, Any]]], where: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """Subschemas reached only through a `$ref` into a non-keyword location (`#/x/y`), which
    the keyword walk does not visit: their refs and patterns get the same checks."""
    resolver = _resolver(schema)
    seen = {id(node) for _path, node in nodes}
    found: list[tuple[str, Mapping[str, Any]]] = []
    pending = [node.get("$ref") for _path, node in nodes]
    while pending:
        ref = pending.pop()
        if not isinstance(ref, str) or not ref.startswith("#"):
            continue
        try:
            target = resolver.lookup(ref).contents
        except referencing.exceptions.Unresolvable:
            continue  # reported by _check_local_refs
        for path, node in _walk(target, f"{where}{ref[1:]}"):
            if id(node) not in seen:
                seen.add(id(node))
                found.append((path, node))
                pending.append(node.get("$ref"))
    return found


def _check_local_refs(schema: Mapping[str, Any], nodes: list[tuple[str, Any]]) -> None:
    resolver = _resolver(schema)
    for path, node in nodes:
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            try:
                resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                found = _problem(f"{path}/{keyword}", f"{ref[:200]!r} does not resolve")
                raise ToolSchemaInvalid(
                    f"{found['path']}: {found['message']}", details={"errors": [found]}
                ) from None
