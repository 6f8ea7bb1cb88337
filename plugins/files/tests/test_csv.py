from __future__ import annotations

from typing import Any

import pytest
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.objects import ObjectNotFound
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files import csv_tools, store
from pasar_files.store import store_of

pytestmark = pytest.mark.anyio


async def put(ctx: ToolContext, key: str, data: bytes) -> None:
    await store_of(ctx).put(ctx.user_id, key, data)


async def get(ctx: ToolContext, key: str) -> bytes:
    return await store_of(ctx).get(ctx.user_id, key, max_bytes=10**8)


async def write(registry: Registry, ctx: ToolContext, **args: Any) -> Any:
    return await registry.invoke("csv:write", ctx, args)


async def read(registry: Registry, ctx: ToolContext, **args: Any) -> Any:
    return await registry.invoke("csv:read", ctx, args)


async def test_round_trip_objects_and_lists(registry: Registry, store_ctx: ToolContext) -> None:
    rows: list[Any] = [
        {"name": "Zoë", "city": "Zürich, CH", "note": 'says "hi"\nand leaves'},
        ["李", "東京", None],
        {"name": "n", "note": 3.5},
        [True, 7, ""],
    ]
    result = await write(
        registry, store_ctx, path="t/people.csv", columns=["name", "city", "note"], rows=rows
    )
    assert result == {"path": "t/people.csv", "rows_written": 4}
    assert await read(registry, store_ctx, path="t/people.csv") == {
        "columns": ["name", "city", "note"],
        "rows": [
            {"name": "Zoë", "city": "Zürich, CH", "note": 'says "hi"\nand leaves'},
            {"name": "李", "city": "東京", "note": ""},
            {"name": "n", "city": "", "note": "3.5"},
            {"name": "true", "city": "7", "note": ""},
        ],
        "row_count": 4,
        "truncated": False,
    }


async def test_append_adds_rows_below_the_header(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await write(registry, store_ctx, path="a.csv", columns=["x", "y"], rows=[[1, 2]], mode="append")
    await write(
        registry, store_ctx, path="a.csv", columns=["x", "y"], rows=[[3, 4], [5, 6]], mode="append"
    )
    assert await get(store_ctx, "a.csv") == b"x,y\n1,2\n3,4\n5,6\n"
    with pytest.raises(ToolError, match="has the columns"):
        await write(registry, store_ctx, path="a.csv", columns=["y", "x"], rows=[], mode="append")
    await write(registry, store_ctx, path="a.csv", columns=["z"], rows=[["only"]])
    assert await get(store_ctx, "a.csv") == b"z\nonly\n"


async def test_append_after_a_missing_final_newline(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await put(store_ctx, "b.csv", b"x;y\n1;2")
    await write(
        registry,
        store_ctx,
        path="b.csv",
        columns=["x", "y"],
        rows=[[3, 4]],
        mode="append",
        delimiter=";",
    )
    result = await read(registry, store_ctx, path="b.csv", delimiter=";", header=False)
    assert result["rows"] == [["x", "y"], ["1", "2"], ["3", "4"]]


async def test_limit_offset_and_truncated(registry: Registry, store_ctx: ToolContext) -> None:
    await write(registry, store_ctx, path="n.csv", columns=["i"], rows=[[i] for i in range(25)])
    first = await read(registry, store_ctx, path="n.csv", limit=10)
    assert [row["i"] for row in first["rows"]] == [str(i) for i in range(10)]
    assert first["row_count"] == 10
    assert first["truncated"] is True
    last = await read(registry, store_ctx, path="n.csv", limit=10, offset=20)
    assert [row["i"] for row in last["rows"]] == [str(i) for i in range(20, 25)]
    assert last["truncated"] is False
    exact = await read(registry, store_ctx, path="n.csv", limit=5, offset=20)
    assert exact["row_count"] == 5
    assert exact["truncated"] is False
    past = await read(registry, store_ctx, path="n.csv", offset=100)
    assert past == {"columns": ["i"], "rows": [], "row_count": 0, "truncated": False}
    default = await read(registry, store_ctx, path="n.csv")
    assert default["row_count"] == 25


async def test_header_false_gives_lists(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "raw.tsv", b"a\tb\n\n1\t2\t3\n")
    result = await read(registry, store_ctx, path="raw.tsv", header=False, delimiter="\t")
    assert result == {
        "columns": [],
        "rows": [["a", "b"], ["1", "2", "3"]],
        "row_count": 2,
        "truncated": False,
    }
    second = await read(registry, store_ctx, path="raw.tsv", header=False, delimiter="\t", offset=1)
    assert second["rows"] == [["1", "2", "3"]]


async def test_header_with_short_long_and_bom(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "bom.csv", "\ufeffa,b\n1\n".encode())
    result = await read(registry, store_ctx, path="bom.csv")
    assert result["columns"] == ["a", "b"]
    assert result["rows"] == [{"a": "1", "b": ""}]
    await put(store_ctx, "long.csv", b"a,b\n1,2,3\n")
    with pytest.raises(ToolError, match="header=false"):
        await read(registry, store_ctx, path="long.csv")
    await put(store_ctx, "dup.csv", b"a,a\n1,2\n")
    with pytest.raises(ToolError, match="twice"):
        await read(registry, store_ctx, path="dup.csv")
    await put(store_ctx, "empty.csv", b"")
    assert (await read(registry, store_ctx, path="empty.csv"))["columns"] == []


async def test_bad_csv_and_bad_bytes(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "bad.csv", b'a,b\n"open,2\n')
    with pytest.raises(ToolError, match="not valid CSV"):
        await read(registry, store_ctx, path="bad.csv")
    await put(store_ctx, "bin.csv", b"a,b\n\xff\xfe,1\n")
    with pytest.raises(ToolError, match="not UTF-8"):
        await read(registry, store_ctx, path="bin.csv")
    with pytest.raises(ToolError, match="does not exist"):
        await read(registry, store_ctx, path="nope.csv")


async def test_rows_that_do_not_fit_the_columns(registry: Registry, store_ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="not a column"):
        await write(registry, store_ctx, path="c.csv", columns=["a"], rows=[{"b": 1}])
    with pytest.raises(ToolError, match="2 cells"):
        await write(registry, store_ctx, path="c.csv", columns=["a"], rows=[[1, 2]])
    with pytest.raises(ObjectNotFound):
        await get(store_ctx, "c.csv")


async def test_size_caps(
    registry: Registry, store_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write(registry, store_ctx, path="s.csv", columns=["a"], rows=[["1"], ["2"]])  # 6 bytes
    monkeypatch.setattr(csv_tools, "CSV_READ_MAX_BYTES", 5)
    with pytest.raises(ToolError, match=r"'s\.csv' is larger than"):
        await read(registry, store_ctx, path="s.csv")
    monkeypatch.setattr(store, "APPEND_MAX_BYTES", 9)  # 6 bytes now, up to 4 more
    with pytest.raises(ToolError, match=r"appending would make 's\.csv' larger than"):
        await write(registry, store_ctx, path="s.csv", columns=["a"], rows=[[3]], mode="append")
    assert await get(store_ctx, "s.csv") == b"a\n1\n2\n"


async def test_append_checks_the_header_before_writing(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await put(store_ctx, "h.csv", b"\xef\xbb\xbfa,b\r\n1,2\r\n")
    await write(registry, store_ctx, path="h.csv", columns=["a", "b"], rows=[[3, 4]], mode="append")
    assert await get(store_ctx, "h.csv") == b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4\n"
    await put(store_ctx, "bad.csv", b"\xff\xfe,1\n")
    with pytest.raises(ToolError, match="not UTF-8"):
        await write(registry, store_ctx, path="bad.csv", columns=["a"], rows=[], mode="append")
    await put(store_ctx, "blank.csv", b"\n\n")
    await write(registry, store_ctx, path="blank.csv", columns=["a"], rows=[[1]], mode="append")
    assert await get(store_ctx, "blank.csv") == b"\n\na\n1\n"


@pytest.mark.parametrize(
    "args",
    [
        {"path": "a.csv", "limit": 10_001},
        {"path": "a.csv", "limit": 0},
        {"path": "a.csv", "offset": -1},
        {"path": "a.csv", "limit": "10"},
        {"path": "a.csv", "header": "yes"},
        {"path": "a.csv", "delimiter": ",,"},
        {"path": "a.csv", "delimiter": '"'},
        {"path": "a.csv", "rows": 5},
        {"limit": 5},
    ],
)
async def test_bad_read_input(
    registry: Registry, store_ctx: ToolContext, args: dict[str, Any]
) -> None:
    with pytest.raises(ToolInputInvalid):
        await registry.invoke("csv:read", store_ctx, args)


@pytest.mark.parametrize(
    "args",
    [
        {"path": "a.csv", "columns": [], "rows": []},
        {"path": "a.csv", "columns": ["a", "a"], "rows": []},
        {"path": "a.csv", "columns": [1], "rows": []},
        {"path": "a.csv", "columns": ["a"], "rows": [{"a": {"nested": 1}}]},
        {"path": "a.csv", "columns": ["a"], "rows": ["text"]},
        {"path": "a.csv", "columns": ["a"], "rows": [], "mode": "replace"},
        {"path": "a.csv", "columns": ["a"], "rows": [], "header": True},
        {"path": "a.csv", "columns": ["a"]},
    ],
)
async def test_bad_write_input(
    registry: Registry, store_ctx: ToolContext, args: dict[str, Any]
) -> None:
    with pytest.raises(ToolInputInvalid):
        await registry.invoke("csv:write", store_ctx, args)
