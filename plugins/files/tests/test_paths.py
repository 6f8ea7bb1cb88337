from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.errors import ToolError
from pasar_core.registry import Registry
from pasar_core.specs import ToolContext
from pasar_files import fs
from pasar_files.paths import resolve_user_path


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
def test_refused_paths(made_root: Path, path: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        resolve_user_path(made_root, path)


def test_plain_paths_resolve_inside(made_root: Path) -> None:
    real = made_root.resolve()
    assert resolve_user_path(made_root, "a/b.txt") == real / "a" / "b.txt"
    assert resolve_user_path(made_root, "./a//b.txt") == real / "a" / "b.txt"
    assert resolve_user_path(made_root, "..hidden/x..y") == real / "..hidden" / "x..y"
    assert resolve_user_path(made_root, "a" * 1024) == real / ("a" * 1024)


def test_file_symlink_out_of_the_root_is_refused(made_root: Path, outside: Path) -> None:
    (made_root / "link.txt").symlink_to(outside / "secret.txt")
    (made_root / "dangling.txt").symlink_to(outside / "not-yet.txt")
    for path in ("link.txt", "dangling.txt"):
        with pytest.raises(ToolError, match="outside"):
            resolve_user_path(made_root, path)


def test_folder_symlink_out_of_the_root_is_refused(made_root: Path, outside: Path) -> None:
    (made_root / "out").symlink_to(outside, target_is_directory=True)
    for path in ("out", "out/secret.txt", "out/new.txt", "out/new/deeper.txt"):
        with pytest.raises(ToolError, match="outside"):
            resolve_user_path(made_root, path)


def test_symlinks_inside_the_root_are_followed(made_root: Path) -> None:
    (made_root / "real").mkdir()
    (made_root / "real" / "f.txt").write_text("x")
    (made_root / "alias").symlink_to("real", target_is_directory=True)
    (made_root / "f-link.txt").symlink_to("real/f.txt")
    real = made_root.resolve()
    assert resolve_user_path(made_root, "alias/f.txt") == real / "real" / "f.txt"
    assert resolve_user_path(made_root, "alias/new.txt") == real / "real" / "new.txt"
    assert resolve_user_path(made_root, "f-link.txt") == real / "real" / "f.txt"


def test_symlink_loop_is_a_tool_error(made_root: Path) -> None:
    (made_root / "loop").symlink_to("loop")
    with pytest.raises(ToolError):
        fs.open_for_read(made_root, "loop")


def test_root_that_is_itself_a_symlink_works(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store-link").symlink_to(tmp_path / "store", target_is_directory=True)
    with fs.open_for_write(tmp_path / "store-link", "a/b.txt", append=False) as handle:
        handle.write(b"ok")
    assert (tmp_path / "store" / "a" / "b.txt").read_bytes() == b"ok"


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
        ("txt:write", {"path": "leak.txt", "content": "pwned"}),
        ("csv:write", {"path": "out/x.csv", "columns": ["a"], "rows": []}),
        ("csv:read", {"path": "out/secret.txt"}),
    ]
    for tool_id, args in attempts:
        path = str(args["path"])
        with pytest.raises(ToolError) as caught:
            await registry.invoke(tool_id, ctx, args)
        message = str(caught.value)
        assert str(made_root) not in message
        if not path.startswith("/"):  # only an absolute path the user sent is echoed
            assert str(outside) not in message
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.mark.anyio
async def test_symlink_inside_the_root_works_through_tools(
    registry: Registry, ctx: ToolContext, made_root: Path
) -> None:
    (made_root / "real").mkdir()
    (made_root / "alias").symlink_to("real", target_is_directory=True)
    await registry.invoke("txt:write", ctx, {"path": "alias/n.txt", "content": "hi"})
    assert (made_root / "real" / "n.txt").read_text() == "hi"
    read = await registry.invoke("txt:read", ctx, {"path": "alias/n.txt"})
    assert read["content"] == "hi"


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, folder: Path, outside: Path) -> None:
    """Replace `folder` with a symlink out of the root right after the path check passed."""
    real_resolve = resolve_user_path

    def racing_resolve(root: Path, relative: str) -> Path:
        resolved = real_resolve(root, relative)
        folder.rename(folder.with_name("moved-away"))
        folder.symlink_to(outside, target_is_directory=True)
        return resolved

    monkeypatch.setattr(fs, "resolve_user_path", racing_resolve)


def test_folder_swapped_for_a_symlink_after_the_check_cannot_escape_a_read(
    made_root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (made_root / "docs").mkdir()
    (made_root / "docs" / "secret.txt").write_text("mine")
    _swap_after_check(monkeypatch, made_root / "docs", outside)
    with pytest.raises(ToolError, match="changed while it was opened"):
        fs.open_for_read(made_root, "docs/secret.txt")


def test_folder_swapped_for_a_symlink_after_the_check_cannot_escape_a_write(
    made_root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (made_root / "docs").mkdir()
    _swap_after_check(monkeypatch, made_root / "docs", outside)
    with pytest.raises(ToolError):
        fs.open_for_write(made_root, "docs/secret.txt", append=False)
    assert (outside / "secret.txt").read_text() == "top secret"


def test_file_swapped_for_a_symlink_after_the_check_is_not_followed(
    made_root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (made_root / "f.txt").write_text("mine")
    real_resolve = resolve_user_path

    def racing_resolve(root: Path, relative: str) -> Path:
        resolved = real_resolve(root, relative)
        (made_root / "f.txt").unlink()
        (made_root / "f.txt").symlink_to(outside / "secret.txt")
        return resolved

    monkeypatch.setattr(fs, "resolve_user_path", racing_resolve)
    with pytest.raises(ToolError, match="changed while it was opened"):
        fs.open_for_write(made_root, "f.txt", append=False)
    assert (outside / "secret.txt").read_text() == "top secret"


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
def test_any_text_is_refused_or_lands_inside(prop_root: Path, relative: str) -> None:
    try:
        resolved = resolve_user_path(prop_root, relative)
    except ToolError:
        return
    assert _inside(resolved, prop_root)


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(_SEGMENT, min_size=1, max_size=8))
def test_safe_segments_always_resolve_inside(prop_root: Path, segments: list[str]) -> None:
    resolved = resolve_user_path(prop_root, "/".join(segments))
    assert resolved == Path(os.path.realpath(prop_root)).joinpath(*segments)
