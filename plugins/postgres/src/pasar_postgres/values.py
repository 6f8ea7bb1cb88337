"""PostgreSQL values to JSON and JSON parameters to the Python types asyncpg binds."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
from pasar_core.errors import ToolError

from pasar_postgres.limits import MAX_CELL_CHARS

INT_TYPES = frozenset({"int2", "int4", "int8", "oid"})
FLOAT_TYPES = frozenset({"float4", "float8"})
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "char", "citext", "unknown"})


class CellBudget:
    """Counts cells cut to MAX_CELL_CHARS while converting one result."""

    def __init__(self) -> None:
        self.cut = 0

    def text(self, value: str) -> str:
        if len(value) <= MAX_CELL_CHARS:
            return value
        self.cut += 1
        return f"{value[:MAX_CELL_CHARS]}… [{len(value) - MAX_CELL_CHARS} more characters]"


def _interval(value: dt.timedelta) -> str:
    """ISO 8601 duration: P1DT2H3M4.5S (asyncpg folds months into 30-day days)."""
    days, seconds, micros = value.days, value.seconds, value.microseconds
    sign = ""
    if days < 0:
        total = -value
        days, seconds, micros, sign = total.days, total.seconds, total.microseconds, "-"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    frac = f"{secs}.{micros:06d}".rstrip("0").rstrip(".") if micros else str(secs)
    clock = "".join(
        f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount
    ) + (f"{frac}S" if secs or micros else "")
    return f"{sign}P{days}D" + (f"T{clock}" if clock else "")


def to_json(value: Any, cells: CellBudget) -> Any:
    """A JSON-safe rendering of a value asyncpg decoded (json/jsonb arrive already parsed)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN, Infinity as text
    if isinstance(value, str):
        return cells.text(value)
    if isinstance(value, Decimal):
        return str(value)  # exact; NaN and Infinity stay readable
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _interval(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return cells.text("\\x" + bytes(value).hex())
    if isinstance(value, Mapping | asyncpg.Record):  # parsed JSON objects, composite types
        return {str(key): to_json(item, cells) for key, item in value.items()}
    if isinstance(value, asyncpg.BitString):
        return cells.text(value.as_string())
    if isinstance(value, list | tuple):  # arrays, anonymous records, geometric types
        return [to_json(item, cells) for item in value]
    if _is_range(value):
        return {
            "lower": to_json(value.lower, cells),
            "upper": to_json(value.upper, cells),
            "lower_inc": bool(value.lower_inc),
            "upper_inc": bool(value.upper_inc),
            "empty": bool(value.isempty),
        }
    return cells.text(str(value))  # inet, cidr, bit strings, money, anything else


def _is_range(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("lower", "upper", "lower_inc", "isempty"))


def _bad_param(index: int, type_name: str, value: Any, hint: str = "") -> ToolError:
    shown = json.dumps(value)[:60]
    return ToolError(
        f"parameter ${index}: cannot use {shown} as {type_name}{hint}; pass a matching JSON "
        f"value or cast in SQL, e.g. ${index}::text::{type_name}"
    )


def _scalar(index: int, type_name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        if type_name in INT_TYPES:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(value) if isinstance(value, int | str) else _raise()
        if type_name in FLOAT_TYPES:
            return float(value) if not isinstance(value, bool | list | dict) else _raise()
        if type_name == "numeric":
            return Decimal(str(value)) if not isinstance(value, bool | list | dict) else _raise()
        if type_name == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "t", "f"):
                return value.lower() in ("true", "t")
            return _raise()
        if type_name in ("json", "jsonb"):
            return value
        if type_name in TEXT_TYPES:
            if isinstance(value, str):
                return value
            return json.dumps(value) if isinstance(value, list | dict) else _text(value)
        if not isinstance(value, str):
            return _raise()
        if type_name == "date":
            return dt.date.fromisoformat(value)
        if type_name == "timestamp":
            return dt.datetime.fromisoformat(value).replace(tzinfo=None)
        if type_name == "timestamptz":
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if type_name == "time":
            return dt.time.fromisoformat(value)
        if type_name == "uuid":
            return uuid.UUID(value)
        if type_name == "bytea":
            return bytes.fromhex(value[2:]) if value.startswith("\\x") else value.encode()
        if type_name in ("inet", "cidr"):
            return ipaddress.ip_interface(value) if "/" in value else ipaddress.ip_address(value)
        return value
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise _bad_param(index, type_name, value) from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _raise() -> Any:
    raise ValueError


def array_element(pg_type: Any) -> str | None:
    """The element type name of an asyncpg array Type (`int4[]` or `_int4`), else None."""
    if pg_type.kind != "array":
        return None
    name = str(pg_type.name)
    if name.endswith("[]"):
        return name[:-2]
    return name[1:] if name.startswith("_") else name


def coerce_params(types: Sequence[Any], params: Sequence[Any]) -> list[Any]:
    """JSON values to what asyncpg binds for each parameter's type (asyncpg Type tuples)."""
    if len(types) != len(params):
        placeholders = f"$1..${len(types)}" if types else "none"
        raise ToolError(
            f"the statement has {len(types)} parameter(s) ({placeholders}) "
            f"but {len(params)} value(s) were given in params"
        )
    coerced: list[Any] = []
    for index, (pg_type, value) in enumerate(zip(types, params, strict=True), start=1):
        element = array_element(pg_type)
        if element is None:
            coerced.append(_scalar(index, str(pg_type.name), value))
        elif value is None:
            coerced.append(None)
        elif not isinstance(value, list):
            raise _bad_param(index, f"{element}[]", value, " (an array needs a JSON list)")
        else:
            coerced.append([_scalar(index, element, item) for item in value])
    return coerced
