"""A real Redis server for tests (Debian's redis-server), on 127.0.0.1 in a temporary dir."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

from redis import Redis

from tests.support.processes import started
from tests.support.servers import free_port


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="pasar-test-redis-")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", workdir]  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with started(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if Redis.from_url(url).ping():
                        break
                except Exception:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
