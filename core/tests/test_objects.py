from __future__ import annotations

import os
import string
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pasar_core.objects import (
    InvalidObjectKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    S3ObjectStore,
    build_object_store,
    normalise_key,
)
from pasar_core.settings import Settings

ACCESS_KEY, SECRET_KEY = "testing-key", "testing-secret"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) on 127.0.0.1, for this module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_store(endpoint: str) -> S3ObjectStore:
    bucket = f"pasar-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(
        bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    store._client.create_bucket(Bucket=bucket)
    return store


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str
) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "files")
    else:
        yield _s3_store(moto_endpoint)


pytestmark = pytest.mark.anyio


async def test_put_get_stat_list_delete(store: ObjectStore) -> None:
    info = await store.put("alice", "reports/q1.pdf", b"%PDF-1.4 data")
    assert (info.key, info.size) == ("reports/q1.pdf", 13)
    assert await store.get("alice", "./reports//q1.pdf", max_bytes=100) == b"%PDF-1.4 data"
    stat = await store.stat("alice", "reports/q1.pdf")
    assert stat.size == 13
    assert stat.modified.tzinfo is not None
    await store.put("alice", "a.txt", b"a")
    await store.put("alice", "reports/q2.pdf", b"")
    await store.put("alice", "reports-old.txt", b"old")
    keys = [info.key for info in await store.list("alice")]
    assert keys == ["a.txt", "reports-old.txt", "reports/q1.pdf", "reports/q2.pdf"]
    assert [i.key for i in await store.list("alice", "reports/")] == [
        "reports/q1.pdf",
        "reports/q2.pdf",
    ]
    assert [i.key for i in await store.list("alice", "rep", limit=2)] == [
        "reports-old.txt",
        "reports/q1.pdf",
    ]
    assert await store.list("alice", "nothing") == []
    assert await store.delete("alice", "reports/q1.pdf") is True
    assert await store.delete("alice", "reports/q1.pdf") is False
    with pytest.raises(ObjectNotFound, match="does not exist"):
        await store.get("alice", "reports/q1.pdf", max_bytes=100)
    with pytest.raises(ObjectNotFound):
        await store.stat("alice", "reports/q1.pdf")


async def test_put_replaces_and_size_cap(store: ObjectStore) -> None:
    await store.put("alice", "f.bin", b"first version")
    await store.put("alice", "f.bin", b"second")
    assert await store.get("alice", "f.bin", max_bytes=6) == b"second"
    with pytest.raises(ObjectTooLarge):
        await store.get("alice", "f.bin", max_bytes=5)


async def test_users_are_isolated(store: ObjectStore) -> None:
    await store.put("alice", "secret.txt", b"alice's")
    with pytest.raises(ObjectNotFound):
        await store.get("bob", "secret.txt", max_bytes=100)
    assert await store.list("bob") == []
    assert await store.delete("bob", "secret.txt") is False
    assert await store.get("alice", "secret.txt", max_bytes=100) == b"alice's"


async def test_streaming(store: ObjectStore) -> None:
    data = os.urandom(200_000)
    await store.put("alice", "big.bin", data)
    stream = await store.open("alice", "big.bin")
    assert stream.info.size == len(data)
    assert b"".join([chunk async for chunk in stream]) == data
    await stream.aclose()
    unread = await store.open("alice", "big.bin")
    await unread.aclose()
    with pytest.raises(ObjectNotFound):
        await store.open("alice", "missing.bin")


@pytest.mark.parametrize(
    "key", ["", "../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "a\x00b", "//host/x", "."]
)
async def test_escaping_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put("alice", key, b"x")
    with pytest.raises(InvalidObjectKey):
        await store.get("alice", key, max_bytes=10)


@pytest.mark.parametrize("user", ["", "..", "a/b", "../alice", "x" * 200])
async def test_bad_user_ids_are_refused(store: ObjectStore, user: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put(user, "a.txt", b"x")


async def test_local_store_never_follows_symlinks(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "files")
    await store.put("alice", "mine.txt", b"mine")
    root = store.root_of("alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "dir").symlink_to(outside, target_is_directory=True)
    for key in ("link.txt", "dir/secret.txt"):
        with pytest.raises(ObjectNotFound):
            await store.get("alice", key, max_bytes=100)
        with pytest.raises(ObjectNotFound):
            await store.open("alice", key)
    with pytest.raises(InvalidObjectKey):
        await store.put("alice", "dir/new.txt", b"pwned")
    assert await store.delete("alice", "link.txt") is False
    assert [i.key for i in await store.list("alice")] == ["mine.txt"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_local_store_conflicts_and_reserved_names(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "files")
    await store.put("alice", "a", b"file")
    with pytest.raises(InvalidObjectKey, match="part of it is a file"):
        await store.put("alice", "a/b", b"x")
    await store.put("alice", "d/e", b"x")
    with pytest.raises(InvalidObjectKey, match="folder"):
        await store.put("alice", "d", b"x")
    with pytest.raises(InvalidObjectKey, match="reserved"):
        await store.put("alice", ".pasar-tmp-1", b"x")
    assert [i.key for i in await store.list("alice")] == ["a", "d/e"]


async def test_single_user_store_uses_the_given_root(tmp_path: Path) -> None:
    store = LocalObjectStore.single_user("u1", tmp_path / "root")
    await store.put("u1", "x/y.txt", b"hi")
    assert (tmp_path / "root" / "x" / "y.txt").read_bytes() == b"hi"
    with pytest.raises(InvalidObjectKey):
        await store.get("u2", "x/y.txt", max_bytes=10)


async def test_s3_keys_outside_the_rules_are_not_listed(moto_endpoint: str) -> None:
    store = _s3_store(moto_endpoint)
    await store.put("alice", "ok.txt", b"x")
    for raw in ("alice/../bob/x", "alice/dir/", "alice/a//b", "bob/ok.txt"):
        store._client.put_object(Bucket=store.bucket, Key=raw, Body=b"x")
    assert [i.key for i in await store.list("alice")] == ["ok.txt"]


async def test_s3_unreachable_is_a_clear_error() -> None:
    from pasar_core.objects import ObjectStoreUnavailable

    store = S3ObjectStore(
        "b", endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"
    )
    with pytest.raises(ObjectStoreUnavailable):
        await store.get("alice", "x", max_bytes=10)


def test_settings_choose_the_store(tmp_path: Path) -> None:
    env = {"PASAR_DATA_DIR": str(tmp_path)}
    local = build_object_store(Settings.from_env(env))
    assert isinstance(local, LocalObjectStore)
    assert local.base == tmp_path / "files"
    s3_env = {
        **env,
        "PASAR_S3_BUCKET": "bucket",
        "PASAR_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "PASAR_S3_ACCESS_KEY_ID": "id",
        "PASAR_S3_SECRET_ACCESS_KEY": "never-printed",
        "PASAR_S3_REGION": "eu-west-1",
    }
    settings_ = Settings.from_env(s3_env)
    assert "never-printed" not in repr(settings_)
    s3 = build_object_store(settings_)
    assert isinstance(s3, S3ObjectStore)
    assert s3.bucket == "bucket"
    from pasar_core.errors import StartupError

    with pytest.raises(StartupError, match="PASAR_S3_BUCKET"):
        build_object_store(Settings.from_env({**env, "PASAR_S3_ENDPOINT_URL": "http://x"}))


_SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-_ .é日", min_size=1).filter(
    lambda s: s.strip(".") != "" and not s.startswith(".pasar-tmp-")
)


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=200))
def test_any_text_is_refused_or_normalised_inside(key: str) -> None:
    try:
        normalised = normalise_key(key)
    except InvalidObjectKey:
        return
    parts = normalised.split("/")
    assert not {"..", "", "."} & set(parts)
    assert not normalised.startswith("/")
    assert "\\" not in normalised
    assert normalise_key(normalised) == normalised


@settings(max_examples=50, deadline=None)
@given(segments=st.lists(_SEGMENT.filter(lambda s: len(s.encode()) < 200), min_size=1, max_size=4))
def test_safe_keys_round_trip_locally(
    tmp_path_factory: pytest.TempPathFactory, segments: list[str]
) -> None:
    import asyncio

    store = LocalObjectStore(tmp_path_factory.mktemp("hyp"))
    key = "/".join(segments)
    expected = normalise_key(key)

    async def round_trip() -> None:
        info = await store.put("alice", key, b"x")
        assert info.key == expected
        assert await store.get("alice", key, max_bytes=1) == b"x"
        assert [i.key for i in await store.list("alice")] == [expected]

    asyncio.run(round_trip())
