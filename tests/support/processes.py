"""Processes the tests start, each of which dies with its fixture whatever state it is in.

Every process started here carries a marker in its environment. Its descendants inherit it: rq's
work horses (which leave the worker's process group), the embedded PostgreSQL that `pasar serve`
starts through `pg_ctl`, and orphans re-parented to init after their parent was killed. Teardown
therefore finds them all by the marker, not only the live children of the process it started.
The session's own marker (`SESSION_MARKER`, set by the root conftest) lets the session, and
`scripts/test` after it, check that nothing the tests started outlives them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import psutil

PROCESS_MARKER = "PASAR_TEST_PROCESS"
SESSION_MARKER = "PASAR_TEST_SESSION"
GRACE_S = 5.0
KILL_WAIT_S = 10.0


def marked(name: str, value: str) -> list[psutil.Process]:
    """Every other process whose environment has `name=value` (inherited ones included)."""
    exclude = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter():
        if process.pid in exclude:
            continue
        try:
            if process.environ().get(name) == value:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_all(processes: Sequence[psutil.Process]) -> list[psutil.Process]:
    """SIGKILL each one (tolerating those already gone); the ones still alive afterwards."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    _, alive = psutil.wait_procs(processes, timeout=KILL_WAIT_S)
    return list(alive)


def stop(process: subprocess.Popen[bytes], marker: str, grace_s: float = GRACE_S) -> None:
    """Ask `process` to stop (SIGTERM, so coverage and servers can write their data), then
    SIGKILL it, its process group and every process carrying its marker."""
    if process.poll() is None and grace_s > 0:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    victims = marked(PROCESS_MARKER, marker)
    if process.poll() is None:
        # Not reaped yet, so its pid (and group id, from start_new_session) is still its own.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    survivors = kill_all(victims)
    process.wait(KILL_WAIT_S)
    # A test that failed before reading its pipes leaves them open: closed here, not by the
    # collector in the middle of a later test (an unraisable ResourceWarning fails that one).
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    if survivors:
        raise RuntimeError(f"test processes survived SIGKILL: {survivors}")


class Processes:
    """Starts processes and stops every one of them (and what they started) on close."""

    def __init__(self) -> None:
        self._started: list[tuple[subprocess.Popen[bytes], str]] = []

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        marker = uuid.uuid4().hex
        environment = {**(os.environ if env is None else env), PROCESS_MARKER: marker}
        session = os.environ.get(SESSION_MARKER)
        if session:
            environment[SESSION_MARKER] = session
        process = subprocess.Popen(argv, env=environment, start_new_session=True, **popen)
        self._started.append((process, marker))
        return process

    def close(self) -> None:
        errors = []
        while self._started:
            process, marker = self._started.pop()
            try:
                stop(process, marker)
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def started(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """One process for the length of a `with` block."""
    with Processes() as processes:
        yield processes.start(argv, env=env, **popen)


def leftovers(session: str) -> list[psutil.Process]:
    """Processes of this test session still alive (the session's own process excluded)."""
    return [process for process in marked(SESSION_MARKER, session) if _alive(process)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:200]}"
    except psutil.NoSuchProcess:
        return f"{process.pid} (gone)"
