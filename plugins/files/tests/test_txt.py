from __future__ import annotations

import os
from pathlib import Path

import pytest
from pasar_core.errors import ToolError, ToolInputInvalid
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def test_write_then_read_round_trip(registry: Registry, ctx: ToolContext) -> None:
    text = "héllo wörld ✓ 日本語 🎉\nsecond line\n"
    written = await registry.invoke("txt:write", ctx, {"path": "notes/a.txt", "content": text})
    assert written == {"path": "notes/a.txt", "bytes_written": len(text.encode())}
    read = await registry.invoke("txt:read", ctx, {"path": "notes/a.txt"})
    assert read == {
        "path": "notes/a.txt",
        "content": text,
        "size_bytes": len(text.encode()),
        "truncated": False,
    }


async def test_overwrite_replaces_and_append_adds(registry: Registry, ctx: ToolContext) -> None:
    await registry.invoke("txt:write", ctx, {"path": "a.txt", "content": "long first version"})
    await registry.invoke("txt:write", ctx, {"path": "a.txt", "content": "one\n"})
    await registry.invoke("txt:write", ctx, {"path": "a.txt", "content": "two\n", "mode": "append"})
    read = await registry.invoke("txt:read", ctx, {"path": "a.txt"})
    assert read["content"] == "one\ntwo\n"


async def test_append_creates_the_file(registry: Registry, ctx: ToolContext) -> None:
    args = {"path": "new/deep/b.txt", "content": "x", "mode": "append"}
    assert (await registry.invoke("txt:write", ctx, args))["bytes_written"] == 1
    assert (ctx.storage_root / "new" / "deep" / "b.txt").read_text() == "x"


async def test_path_is_normalised(registry: Registry, ctx: ToolContext) -> None:
    await registry.invoke("txt:write", ctx, {"path": "./x//y.txt", "content": "hi"})
    read = await registry.invoke("txt:read", ctx, {"path": "x/y.txt"})
    assert read["path"] == "x/y.txt"


async def test_max_bytes_truncates_without_splitting_a_character(
    registry: Registry, ctx: ToolContext
) -> None:
    await registry.invoke("txt:write", ctx, {"path": "u.txt", "content": "aé日"})  # 1+2+3 bytes
    read = await registry.invoke("txt:read", ctx, {"path": "u.txt", "max_bytes": 4})
    assert read == {"path": "u.txt", "content": "aé", "size_bytes": 6, "truncated": True}
    read = await registry.invoke("txt:read", ctx, {"path": "u.txt", "max_bytes": 6})
    assert read["content"] == "aé日"
    assert read["truncated"] is False


async def test_other_encoding(registry: Registry, ctx: ToolContext, root: Path) -> None:
    root.mkdir(parents=True)
    (root / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ToolError, match="not valid utf-8"):
        await registry.invoke("txt:read", ctx, {"path": "latin.txt"})
    read = await registry.invoke("txt:read", ctx, {"path": "latin.txt", "encoding": "latin-1"})
    assert read["content"] == "café"


async def test_binary_file_is_refused(registry: Registry, ctx: ToolContext, root: Path) -> None:
    root.mkdir(parents=True)
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ToolError, match=r"image\.png"):
        await registry.invoke("txt:read", ctx, {"path": "image.png"})
    (root / "nul.bin").write_bytes(b"abc\x00def")
    with pytest.raises(ToolError, match="binary"):
        await registry.invoke("txt:read", ctx, {"path": "nul.bin"})


async def test_missing_file_and_folder(registry: Registry, ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match=r"'missing\.txt' does not exist") as caught:
        await registry.invoke("txt:read", ctx, {"path": "missing.txt"})
    assert str(root) not in str(caught.value)
    await registry.invoke("txt:write", ctx, {"path": "dir/f.txt", "content": ""})
    with pytest.raises(ToolError, match="folder, not a file"):
        await registry.invoke("txt:read", ctx, {"path": "dir"})
    with pytest.raises(ToolError, match="not a folder"):
        await registry.invoke("txt:read", ctx, {"path": "dir/f.txt/g.txt"})
    with pytest.raises(ToolError, match="folder, not a file"):
        await registry.invoke("txt:write", ctx, {"path": "dir", "content": "x"})


async def test_fifo_is_refused_without_hanging(
    registry: Registry, ctx: ToolContext, root: Path
) -> None:
    root.mkdir(parents=True)
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await registry.invoke("txt:read", ctx, {"path": "pipe"})


async def test_content_over_the_limit_is_refused(registry: Registry, ctx: ToolContext) -> None:
    big = "é" * (6 * MIB)  # under maxLength in characters, 12 MiB as UTF-8
    with pytest.raises(ToolError, match="10 MiB"):
        await registry.invoke("txt:write", ctx, {"path": "big.txt", "content": big})
    with pytest.raises(ToolInputInvalid):
        await registry.invoke(
            "txt:write", ctx, {"path": "big.txt", "content": "a" * (10 * MIB + 1)}
        )
    assert not (ctx.storage_root / "big.txt").exists()


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
    registry: Registry, ctx: ToolContext, tool_id: str, args: dict[str, object]
) -> None:
    with pytest.raises(ToolInputInvalid):
        await registry.invoke(tool_id, ctx, args)
