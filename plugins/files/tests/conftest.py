from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pasar_files
import pytest
from pasar_core.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.specs import ToolContext


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> Registry:
    return build_registry(build_plugin_manager(enabled=(), extra=[pasar_files]))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A user's storage root that does not exist yet (the tools create it)."""
    return tmp_path / "users" / "u1"


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    return ToolContext(user_id="u1", storage_root=root)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def store_ctx(request: pytest.FixtureRequest, root: Path) -> ToolContext:
    """A ToolContext carrying an object store: the local one over `root`, or S3 (moto)."""
    store: ObjectStore
    if request.param == "local":
        store = LocalObjectStore(root.parent)
    else:
        bucket = f"pasar-{uuid.uuid4().hex[:12]}"
        store = S3ObjectStore(
            bucket,
            endpoint_url=request.getfixturevalue("moto_endpoint"),
            access_key_id="testing",
            secret_access_key="testing",
        )
        store._client.create_bucket(Bucket=bucket)
    return ToolContext(user_id="u1", storage_root=root, objects=store)
