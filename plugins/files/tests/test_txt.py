from __future__ import annotations

import os
from pathlib import Path

import pytest
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.objects import ObjectNotFound, S3ObjectStore
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files import store
from pasar_files.store import store_of

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def put(ctx: ToolContext, key: str, data: bytes) -> None:
    await store_of(ctx).put(ctx.user_id, key, data)


async def get(ctx: ToolContext, key: str) -> bytes:
    return await store_of(ctx).get(ctx.user_id, key, max_bytes=100 * MIB)


async def test_write_then_read_round_trip(registry: Registry, store_ctx: ToolContext) -> None:
    text = "héllo wörld ✓ 日本語 🎉\nsecond line\n"
    written = await registry.invoke(
        "txt:write", store_ctx, {"path": "notes/a.txt", "content": text}
    )
    assert written == {"path": "notes/a.txt", "bytes_written": len(text.encode())}
    read = await registry.invoke("txt:read", store_ctx, {"path": "notes/a.txt"})
    assert read == {
        "path": "notes/a.txt",
        "content": text,
        "size_bytes": len(text.encode()),
        "truncated": False,
    }


async def test_overwrite_replaces_and_append_adds(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await registry.invoke(
        "txt:write", store_ctx, {"path": "a.txt", "content": "long first version"}
    )
    await registry.invoke("txt:write", store_ctx, {"path": "a.txt", "content": "one\n"})
    await registry.invoke(
        "txt:write", store_ctx, {"path": "a.txt", "content": "two\n", "mode": "append"}
    )
    read = await registry.invoke("txt:read", store_ctx, {"path": "a.txt"})
    assert read["content"] == "one\ntwo\n"


async def test_append_creates_the_file(registry: Registry, store_ctx: ToolContext) -> None:
    args = {"path": "new/deep/b.txt", "content": "x", "mode": "append"}
    assert (await registry.invoke("txt:write", store_ctx, args))["bytes_written"] == 1
    assert await get(store_ctx, "new/deep/b.txt") == b"x"


async def test_path_is_normalised(registry: Registry, store_ctx: ToolContext) -> None:
    await registry.invoke("txt:write", store_ctx, {"path": "./x//y.txt", "content": "hi"})
    read = await registry.invoke("txt:read", store_ctx, {"path": "x/y.txt"})
    assert read["path"] == "x/y.txt"


async def test_max_bytes_truncates_without_splitting_a_character(
    registry: Registry, store_ctx: ToolContext
) -> None:
    await registry.invoke(
        "txt:write", store_ctx, {"path": "u.txt", "content": "aé日"}
    )  # 1+2+3 bytes
    read = await registry.invoke("txt:read", store_ctx, {"path": "u.txt", "max_bytes": 4})
    assert read == {"path": "u.txt", "content": "aé", "size_bytes": 6, "truncated": True}
    read = await registry.invoke("txt:read", store_ctx, {"path": "u.txt", "max_bytes": 6})
    assert read["content"] == "aé日"
    assert read["truncated"] is False


async def test_other_encoding(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "latin.txt", "café".encode("latin-1"))
    with pytest.raises(ToolError, match="not valid utf-8"):
        await registry.invoke("txt:read", store_ctx, {"path": "latin.txt"})
    read = await registry.invoke(
        "txt:read", store_ctx, {"path": "latin.txt", "encoding": "latin-1"}
    )
    assert read["content"] == "café"


async def test_binary_file_is_refused(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ToolError, match=r"image\.png"):
        await registry.invoke("txt:read", store_ctx, {"path": "image.png"})
    await put(store_ctx, "nul.bin", b"abc\x00def")
    with pytest.raises(ToolError, match="binary"):
        await registry.invoke("txt:read", store_ctx, {"path": "nul.bin"})


async def test_missing_file_and_folder(
    registry: Registry, store_ctx: ToolContext, root: Path
) -> None:
    with pytest.raises(ToolError, match=r"'missing\.txt' does not exist") as caught:
        await registry.invoke("txt:read", store_ctx, {"path": "missing.txt"})
    assert str(root) not in str(caught.value)
    await registry.invoke("txt:write", store_ctx, {"path": "dir/f.txt", "content": ""})
    with pytest.raises(ToolError, match="folder, not a file"):
        await registry.invoke("txt:read", store_ctx, {"path": "dir"})
    with pytest.raises(ToolError, match="folder, not a file"):
        await registry.invoke("txt:read", store_ctx, {"path": "./dir/"})
    if isinstance(store_ctx.objects, S3ObjectStore):
        return  # S3 has no folders: "dir" and "dir/f.txt/g.txt" are just other keys
    with pytest.raises(ToolError, match="not a folder"):
        await registry.invoke("txt:read", store_ctx, {"path": "dir/f.txt/g.txt"})
    with pytest.raises(ToolError, match="folder, not a file"):
        await registry.invoke("txt:write", store_ctx, {"path": "dir", "content": "x"})


async def test_fifo_is_refused_without_hanging(
    registry: Registry, ctx: ToolContext, root: Path
) -> None:
    root.mkdir(parents=True)
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await registry.invoke("txt:read", ctx, {"path": "pipe"})
    await registry.invoke("txt:write", ctx, {"path": "pipe", "content": "now a file"})
    assert (root / "pipe").read_text() == "now a file"


async def test_content_over_the_limit_is_refused(
    registry: Registry, store_ctx: ToolContext
) -> None:
    big = "é" * (6 * MIB)  # under maxLength in characters, 12 MiB as UTF-8
    with pytest.raises(ToolError, match="10 MiB"):
        await registry.invoke("txt:write", store_ctx, {"path": "big.txt", "content": big})
    with pytest.raises(ToolInputInvalid):
        await registry.invoke(
            "txt:write", store_ctx, {"path": "big.txt", "content": "a" * (10 * MIB + 1)}
        )
    with pytest.raises(ObjectNotFound):
        await get(store_ctx, "big.txt")


async def test_append_cannot_grow_a_file_past_the_cap(
    registry: Registry, store_ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "APPEND_MAX_BYTES", 10)
    await registry.invoke("txt:write", store_ctx, {"path": "a.txt", "content": "123456"})
    args = {"path": "a.txt", "content": "7890", "mode": "append"}
    await registry.invoke("txt:write", store_ctx, args)
    with pytest.raises(ToolError, match=r"appending would make 'a\.txt' larger than"):
        await registry.invoke("txt:write", store_ctx, {**args, "content": "x"})
    assert await get(store_ctx, "a.txt") == b"1234567890"
    await registry.invoke("txt:write", store_ctx, {**args, "path": "b.txt"})  # a new file


async def test_large_file_is_read_in_part(registry: Registry, store_ctx: ToolContext) -> None:
    await put(store_ctx, "big.log", b"0123456789" * 200_000)  # 2 MB, more than one chunk
    read = await registry.invoke("txt:read", store_ctx, {"path": "big.log", "max_bytes": 70_001})
    assert read["size_bytes"] == 2_000_000
    assert read["truncated"] is True
    assert read["content"] == ("0123456789" * 7001)[:70_001]


@pytest.mark.parametrize(
    ("tool_id", "args"),
    [
        ("txt:read", {}),
        ("txt:read", {"path": "a.txt", "extra": 1}),
        ("txt:read", {"path": 3}),
        ("txt:read", {"path": ""}),
        ("txt:read", {"path": "a.txt", "max_bytes": 10 * MIB + 1}),
        ("txt:read", {"path": "a.txt", "max_bytes": 0}),
        ("txt:read", {"path": "a.txt", "max_bytes": "5"}),
        ("txt:read", {"path": "a.txt", "encoding": "rot13"}),
        ("txt:read", {"path": "a" * 1025}),
        ("txt:write", {"path": "a.txt"}),
        ("txt:write", {"path": "a.txt", "content": 5}),
        ("txt:write", {"path": "a.txt", "content": "x", "mode": "prepend"}),
        ("txt:write", {"path": "a.txt", "content": "x", "encoding": "utf-8"}),
    ],
)
async def test_bad_input_is_refused(
    registry: Registry, store_ctx: ToolContext, tool_id: str, args: dict[str, object]
) -> None:
    with pytest.raises(ToolInputInvalid):
        await registry.invoke(tool_id, store_ctx, args)
