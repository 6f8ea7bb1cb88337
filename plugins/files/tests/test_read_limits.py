"""Files too wide or too long to read whole are refused or cut by the read limits, with a typed
outcome, before they cost memory; what is returned stays under the core's result cap."""

from __future__ import annotations

import io
from typing import Any

import docx
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.registry import Registry
from pasar_core.results import DEFAULT_MAX_TOOL_RESULT_BYTES, model_json
from pasar_core.specs import ToolContext
from pasar_files import csv_tools
from pasar_files.errors import FileLimitExceeded
from pasar_files.limits import (
    CSV_MAX_CELL_CHARS,
    CSV_MAX_COLUMNS,
    CSV_MAX_NAME_CHARS,
    CSV_MAX_RECORD_CHARS,
    CSV_READ_MAX_CHARS,
)
from pasar_files.store import store_of

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def put(ctx: ToolContext, key: str, data: bytes) -> None:
    await store_of(ctx).put(ctx.user_id, key, data)


async def refused(registry: Registry, ctx: ToolContext, tool: str, **args: Any) -> dict[str, Any]:
    with pytest.raises(FileLimitExceeded) as caught:
        await registry.invoke(tool, ctx, args)
    assert caught.value.code == "FILE_LIMIT_EXCEEDED"
    return caught.value.details


def million_columns() -> bytes:
    """The attack as measured: about 9.9 MB, one million columns, and one data row."""
    header = ",".join(f"col{i}" for i in range(1_000_000))
    return (header + "\n" + "1" + "," * 999 + "\n").encode()


@pytest.mark.parametrize("header", [True, False])
async def test_a_million_columns_are_refused_before_they_are_split(
    registry: Registry, ctx: ToolContext, header: bool
) -> None:
    data = million_columns()
    assert 9_800_000 < len(data) < 10_000_000
    await put(ctx, "wide.csv", data)
    details = await refused(registry, ctx, "csv:read", path="wide.csv", header=header)
    # refused on the record's length, before csv.reader made a million fields of it
    assert details == {"path": "wide.csv", "limit": "record_chars", "max": CSV_MAX_RECORD_CHARS}


async def test_one_column_too_many_is_refused(registry: Registry, ctx: ToolContext) -> None:
    await put(ctx, "w.csv", (",".join(["a"] * (CSV_MAX_COLUMNS + 1)) + "\n").encode())
    details = await refused(registry, ctx, "csv:read", path="w.csv", header=False)
    assert details["limit"] == "columns"
    await put(ctx, "ok.csv", (",".join(f"c{i}" for i in range(CSV_MAX_COLUMNS)) + "\n").encode())
    ok = await registry.invoke("csv:read", ctx, {"path": "ok.csv"})
    assert len(ok["columns"]) == CSV_MAX_COLUMNS


@pytest.mark.parametrize(
    ("name", "data", "limit"),
    [
        # a quote inside an unquoted field is a plain character: the fields still count
        ("quote", b'a"' + b"," * (CSV_MAX_COLUMNS + 5) + b"\n", "columns"),
        # quoted newlines join lines into one record: the record's length counts across them
        ("lines", b'"\n' + (b'",,,,,,,,"\n' * (CSV_MAX_RECORD_CHARS // 10 + 10)), "record_chars"),
        ("cell", b"a\n" + b"x" * (CSV_MAX_CELL_CHARS + 1) + b"\n", "cell_chars"),
        ("name", b"x" * (CSV_MAX_NAME_CHARS + 1) + b"\n1\n", "name_chars"),
        ("line", b"a\n" + b"x" * (CSV_MAX_RECORD_CHARS + 10), "record_chars"),
    ],
)
async def test_hostile_shapes_meet_a_named_limit(
    registry: Registry, ctx: ToolContext, name: str, data: bytes, limit: str
) -> None:
    await put(ctx, f"{name}.csv", data)
    details = await refused(registry, ctx, "csv:read", path=f"{name}.csv")
    assert details["limit"] == limit


async def test_many_tiny_cells_are_cut_by_the_character_budget(
    registry: Registry, ctx: ToolContext
) -> None:
    """10,000 rows of 999 empty cells: no text, but 4 characters of JSON each."""
    names = ",".join(f"c{i}" for i in range(999)) + "\n"
    await put(ctx, "empty.csv", (("," * 998 + "\n") * 10_000).encode())
    await put(ctx, "named.csv", (names + ("," * 998 + "\n") * 10_000).encode())
    for path, header in (("empty.csv", False), ("named.csv", True)):
        result = await registry.invoke(
            "csv:read", ctx, {"path": path, "header": header, "limit": 10_000}
        )
        assert result["truncated"] is True
        assert 0 < result["row_count"] < 10_000
        assert len(model_json(result)) <= CSV_READ_MAX_CHARS + 64 * 1024
        assert len(model_json(result)) <= DEFAULT_MAX_TOOL_RESULT_BYTES


async def test_a_row_bigger_than_one_read_is_refused_not_returned_empty(
    registry: Registry, ctx: ToolContext
) -> None:
    names = [f"{i:04d}" + "n" * 995 for i in range(CSV_MAX_COLUMNS)]  # 1,000 names of 999 chars
    row = ["v" * 1_100] * CSV_MAX_COLUMNS
    await put(ctx, "fat.csv", (",".join(names) + "\n" + ",".join(row) + "\n").encode())
    details = await refused(registry, ctx, "csv:read", path="fat.csv")
    assert details["limit"] == "read_chars"


async def test_what_csv_write_writes_csv_read_reads_back(
    registry: Registry, ctx: ToolContext
) -> None:
    from pasar_core.errors import ToolError

    with pytest.raises(ToolError, match="longer than 131072"):
        await registry.invoke(
            "csv:write",
            ctx,
            {"path": "big.csv", "columns": ["a"], "rows": [["x" * (CSV_MAX_CELL_CHARS + 1)]]},
        )
    wide = [["y" * 100_000] * 30]  # 3 MB in one record
    with pytest.raises(ToolError, match="one record"):
        await registry.invoke(
            "csv:write", ctx, {"path": "big.csv", "columns": [f"c{i}" for i in range(30)],
                               "rows": wide}
        )  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.lists(st.text(alphabet='a,"\n\r ', max_size=8), min_size=1, max_size=1_200),
)
def test_no_csv_text_gets_past_the_column_cap(fields: list[str]) -> None:
    """Whatever the quoting, a returned row never has more than CSV_MAX_COLUMNS fields."""
    data = ",".join(fields).encode()
    try:
        result = csv_tools.read_csv(
            data, "h.csv", limit=10_000, offset=0, delimiter=",", header=False
        )
    except FileLimitExceeded as error:
        assert error.details["limit"] in ("columns", "record_chars", "read_chars")
    except Exception as error:  # malformed CSV: a clear ToolError
        from pasar_core.errors import ToolError

        assert isinstance(error, ToolError), repr(error)
    else:
        assert all(len(row) <= CSV_MAX_COLUMNS for row in result["rows"])


async def test_xlsx_counts_every_cell_not_only_text(registry: Registry, ctx: ToolContext) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for _ in range(2_000):
        sheet.append([1.5] * 100)
    out = io.BytesIO()
    book.save(out)
    await put(ctx, "n.xlsx", out.getvalue())
    result = await registry.invoke(
        "xlsx:read", ctx, {"path": "n.xlsx", "limit": 2_000, "max_chars": 100_000}
    )
    assert result["truncated"] is True
    assert len(model_json(result["rows"])) <= 100_000 + 1_000


async def test_docx_counts_empty_table_cells(registry: Registry, ctx: ToolContext) -> None:
    document = docx.Document()
    for _ in range(3):
        document.add_table(rows=50, cols=20)
    out = io.BytesIO()
    document.save(out)
    await put(ctx, "t.docx", out.getvalue())
    result = await registry.invoke("docx:read", ctx, {"path": "t.docx", "max_chars": 5_000})
    assert result["truncated"] is True
    assert len(result["blocks"]) == 1  # 1,000 empty cells count 4,000 characters
    assert len(model_json(result["blocks"])) <= 5_000 + 1_000
