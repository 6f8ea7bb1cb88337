"""The path guard (the object store's key rules) and symlinks in the local folder.

The local store never follows a symlink: not out of the user's root, not inside it. A path
through one is refused with a message naming only the user's path; writing a path that is itself
a symlink replaces the link with a regular file, leaving its target alone.
"""

from __future__ import annotations

import asyncio
import os
import string
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import PasarError, ToolError
from pasar_core.objects import LocalObjectStore
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files.store import checked_key


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("top secret")
    return secret


@pytest.fixture
def made_root(root: Path) -> Path:
    root.mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("/etc/passwd", "absolute"),
        ("\\windows\\system32", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("c:file.txt", "absolute"),
        ("\\\\server\\share\\x", "UNC"),
        ("//server/share/x", "UNC"),
        ("a\\b.txt", "backslash"),
        ("..", r"'\.\.'"),
        ("../x", r"'\.\.'"),
        ("a/../../x", r"'\.\.'"),
        ("a/..", r"'\.\.'"),
        (".", "does not name a file"),
        ("./", "does not name a file"),
        ("a" * 1025, "longer than 1024"),
        ("\ud800.txt", "Unicode"),
    ],
)
def test_refused_paths(path: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        checked_key(path)


def test_plain_paths_are_normalised() -> None:
    assert checked_key("a/b.txt") == "a/b.txt"
    assert checked_key("./a//b.txt/") == "a/b.txt"
    assert checked_key("..hidden/x..y") == "..hidden/x..y"
    assert checked_key("a" * 1024) == "a" * 1024
    assert checked_key("r.PDF", ".pdf") == "r.PDF"
    with pytest.raises(ToolError, match=r"must end with \.pdf"):
        checked_key("r.txt", ".pdf")


async def refused(registry: Registry, ctx: ToolContext, tool_id: str, **args: object) -> str:
    with pytest.raises(ToolError) as caught:
        await registry.invoke(tool_id, ctx, args)
    return str(caught.value)


@pytest.mark.anyio
async def test_file_symlink_out_of_the_root_is_not_followed(
    registry: Registry, ctx: ToolContext, made_root: Path, outside: Path
) -> None:
    (made_root / "link.txt").symlink_to(outside / "secret.txt")
    (made_root / "dangling.txt").symlink_to(outside / "not-yet.txt")
    for path in ("link.txt", "dangling.txt"):
        assert "symlink" in await refused(registry, ctx, "txt:read", path=path)
        assert "symlink" in await refused(registry, ctx, "csv:read", path=path)
    await registry.invoke("txt:write", ctx, {"path": "dangling.txt", "content": "mine"})
    assert not (made_root / "dangling.txt").is_symlink()
    assert (made_root / "dangling.txt").read_text() == "mine"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.mark.anyio
async def test_folder_symlink_out_of_the_root_is_not_followed(
    registry: Registry, ctx: ToolContext, made_root: Path, outside: Path
) -> None:
    (made_root / "out").symlink_to(outside, target_is_directory=True)
    for path in ("out", "out/secret.txt", "out/new.txt", "out/new/deeper.txt"):
        assert "symlink" in await refused(registry, ctx, "txt:read", path=path)
    for path in ("out/secret.txt", "out/new.txt", "out/new/deeper.txt"):
        assert "symlink" in await refused(registry, ctx, "txt:write", path=path, content="x")
        message = await refused(registry, ctx, "csv:write", path=path, columns=["a"], rows=[])
        assert "symlink" in message
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.mark.anyio
async def test_symlinks_inside_the_root_are_not_followed_either(
    registry: Registry, ctx: ToolContext, made_root: Path
) -> None:
    (made_root / "real").mkdir()
    (made_root / "real" / "f.txt").write_text("x")
    (made_root / "alias").symlink_to("real", target_is_directory=True)
    (made_root / "f-link.txt").symlink_to("real/f.txt")
    assert "symlink" in await refused(registry, ctx, "txt:read", path="alias/f.txt")
    assert "symlink" in await refused(registry, ctx, "txt:read", path="f-link.txt")
    assert "symlink" in await refused(registry, ctx, "txt:write", path="alias/n.txt", content="")
    assert not (made_root / "real" / "n.txt").exists()
    await registry.invoke("txt:write", ctx, {"path": "f-link.txt", "content": "y"})
    assert (made_root / "real" / "f.txt").read_text() == "x"
    assert (made_root / "f-link.txt").read_text() == "y"
    listed = await registry.invoke("files:list", ctx, {})
    assert [f["path"] for f in listed["files"]] == ["f-link.txt", "real/f.txt"]


@pytest.mark.anyio
async def test_symlink_loop_is_a_tool_error(
    registry: Registry, ctx: ToolContext, made_root: Path
) -> None:
    (made_root / "loop").symlink_to("loop")
    assert "symlink" in await refused(registry, ctx, "txt:read", path="loop")
    assert "symlink" in await refused(registry, ctx, "txt:read", path="loop/a.txt")


@pytest.mark.anyio
async def test_root_that_is_itself_a_symlink_works(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store-link").symlink_to(tmp_path / "store", target_is_directory=True)
    ctx = ToolContext(user_id="u1", storage_root=tmp_path / "store-link")
    await registry.invoke("txt:write", ctx, {"path": "a/b.txt", "content": "ok"})
    assert (tmp_path / "store" / "a" / "b.txt").read_bytes() == b"ok"
    assert (await registry.invoke("txt:read", ctx, {"path": "a/b.txt"}))["content"] == "ok"


@pytest.mark.anyio
async def test_tools_refuse_escapes_without_leaking_server_paths(
    registry: Registry, ctx: ToolContext, made_root: Path, outside: Path
) -> None:
    (made_root / "out").symlink_to(outside, target_is_directory=True)
    (made_root / "leak.txt").symlink_to(outside / "secret.txt")
    attempts: list[tuple[str, dict[str, object]]] = [
        ("txt:read", {"path": "../outside/secret.txt"}),
        ("txt:read", {"path": str(outside / "secret.txt")}),
        ("txt:read", {"path": "leak.txt"}),
        ("txt:read", {"path": "out/secret.txt"}),
        ("txt:write", {"path": "out/secret.txt", "content": "pwned"}),
        ("txt:write", {"path": "out/sub/new.txt", "content": "pwned"}),
        ("txt:write", {"path": "out/secret.txt", "content": "pwned", "mode": "append"}),
        ("csv:write", {"path": "out/x.csv", "columns": ["a"], "rows": []}),
        ("csv:write", {"path": "out/x.csv", "columns": ["a"], "rows": [], "mode": "append"}),
        ("csv:read", {"path": "out/secret.txt"}),
        ("csv:read", {"path": "leak.txt"}),
        ("pdf:create", {"path": "out/x.pdf", "text": "pwned"}),
    ]
    for tool_id, args in attempts:
        path = str(args["path"])
        with pytest.raises(ToolError) as caught:
            await registry.invoke(tool_id, ctx, args)
        message = str(caught.value)
        assert str(made_root) not in message
        if not path.startswith("/"):  # only an absolute path the user sent is echoed
            assert str(outside) not in message
    # Writing the link's own path replaces the link; its target is never written.
    args = {"path": "leak.txt", "content": "mine", "mode": "append"}
    await registry.invoke("txt:write", ctx, args)
    assert not (made_root / "leak.txt").is_symlink()
    assert (made_root / "leak.txt").read_text() == "mine"
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# Property tests. A module-level root (not the function-scoped tmp_path) keeps hypothesis happy.


@pytest.fixture(scope="module")
def prop_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("prop")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (base / "outside").mkdir()
    (root / "escape").symlink_to(base / "outside", target_is_directory=True)
    (root / "inner").symlink_to("sub", target_is_directory=True)
    (root / "up").symlink_to("..", target_is_directory=True)
    return root


_PATH_ALPHABET = st.sampled_from(
    ["/", "\\", ".", "..", ":", "C:", "\x00", "~", " ", "escape", "inner", "up", "sub", "a", "é"]
)
_SEGMENT = st.text(
    alphabet=string.ascii_letters + string.digits + "-_ é日", min_size=1, max_size=20
).filter(lambda s: s not in (".", "..", "escape", "inner", "up"))  # not the symlinks


def _inside(path: Path, root: Path) -> bool:
    real_root = Path(os.path.realpath(root))
    return Path(os.path.realpath(path)).is_relative_to(real_root)


@settings(max_examples=200, deadline=None)
@given(relative=st.text(max_size=300) | st.lists(_PATH_ALPHABET, max_size=12).map("".join))
def test_any_text_is_refused_or_stored_inside(prop_root: Path, relative: str) -> None:
    try:
        key = checked_key(relative)
    except ToolError:
        return
    assert not PurePosixPath(key).is_absolute()
    assert ".." not in PurePosixPath(key).parts
    store = LocalObjectStore.single_user("u1", prop_root)
    try:
        info = asyncio.run(store.put("u1", key, b"x"))
    except PasarError:
        pass
    else:
        assert info.key == key
        assert _inside(prop_root / key, prop_root)
        assert (prop_root / key).is_file()
        assert not (prop_root / key).is_symlink()
    assert list((prop_root.parent / "outside").iterdir()) == []


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(_SEGMENT, min_size=1, max_size=8))
def test_safe_segments_are_kept(segments: list[str]) -> None:
    assert checked_key("/".join(segments)) == "/".join(segments)
