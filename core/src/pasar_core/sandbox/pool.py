"""A worker's warm containers: idle ones kept per workload, a cap on how many exist at once.

Concurrency: one `threading.Condition` guards the idle lists and the count. The count includes
containers being started and being removed, and is only lowered once a removal has finished, so
the daemon never holds more than `max_containers` of this pool's serving containers at any
moment. Starting and removing happen outside the lock.

Closing never holds a caller up: an evicted container whose workload runs `shutdown` hooks (a
sandboxed plugin: up to `CLOSE_LIMITS` before it is killed) is removed by a thread of its own,
its slot passing to the new container at once, so such containers come on top of the cap while
they shut down (`PoolStats.closing`); `close()` removes every idle container concurrently, all
within `CLOSE_ALL_S`, then kills what is left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from pasar_core.errors import SandboxBusy
from pasar_core.sandbox.container import SandboxContainer, remove_container

CLOSE_ALL_S = 15.0
"""`close()`: how long every idle container together gets to shut down before it is killed."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    existing: int
    idle: int
    closing: int = 0
    """Evicted containers still running their workload's `shutdown` hooks (off the cap)."""


class WarmPool:
    def __init__(
        self,
        *,
        max_containers: int,
        calls_per_container: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_containers = max_containers
        self.calls_per_container = calls_per_container
        self.idle_s = idle_s
        self.clock = clock
        self._lock = threading.Condition()
        self._idle: dict[Hashable, list[SandboxContainer]] = {}
        self._existing = 0
        self._closed = False
        self._retiring: set[threading.Thread] = set()
        self._evicting: set[threading.Thread] = set()

    def acquire(
        self,
        key: Hashable,
        start: Callable[[], SandboxContainer],
        *,
        wait_s: float,
    ) -> tuple[SandboxContainer, bool]:
        """A container for `key` and whether it was started for this call (cold).

        Takes the most recently used idle container of `key`; else starts one if the cap allows,
        first removing the least recently used idle container of another key when full; else
        waits up to `wait_s` for a container to be released."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while True:
                if self._closed:
                    raise SandboxBusy("this sandbox worker is shutting down")
                idle = self._idle.get(key)
                if idle:
                    return idle.pop(), False
                victim = None
                if self._existing >= self.max_containers:
                    victim = self._oldest_idle()
                if self._existing < self.max_containers or victim is not None:
                    if victim is None:
                        self._existing += 1  # a slot for the new container
                    break  # a victim's slot passes to the new container
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxBusy(
                        f"all {self.max_containers} sandbox containers of this worker stayed "
                        f"busy for {wait_s:g} s"
                    )
                self._lock.wait(remaining)
        if victim is not None:
            self._evict(victim)
        try:
            container = start()
        except BaseException:
            self._forget_one()
            raise
        return container, True

    def release(self, container: SandboxContainer, *, reusable: bool) -> None:
        """Return a container after a call: kept warm, or removed (failure, N calls, closing)."""
        container.last_used = self.clock()
        keep = reusable and not container.destroyed and container.calls < self.calls_per_container
        with self._lock:
            if keep and not self._closed:
                self._idle.setdefault(container.key, []).append(container)
                self._lock.notify_all()
                return
            if reusable and not container.destroyed and not self._closed:
                # A healthy container that served its N calls: remove it off the caller's path.
                retire = threading.Thread(
                    target=self._retire, args=(container,), name="pasar-sandbox-retire"
                )
                self._retiring.add(retire)
                retire.start()
                return
        self._retire(container)

    def _retire(self, container: SandboxContainer) -> None:
        try:
            container.destroy()
        finally:
            self._forget_one()
            with self._lock:
                self._retiring.discard(threading.current_thread())

    def _evict(self, victim: SandboxContainer) -> None:
        """Remove an idle container whose slot a new one takes: at once when removing it is a
        kill, by a thread of its own when its workload's `shutdown` hooks run first."""
        if not victim.shuts_down:
            victim.destroy()
            return
        thread = threading.Thread(
            target=self._destroy_evicted, args=(victim,), name="pasar-sandbox-evict", daemon=True
        )
        with self._lock:
            self._evicting.add(thread)
        thread.start()

    def _destroy_evicted(self, victim: SandboxContainer) -> None:
        try:
            victim.destroy()
        finally:
            with self._lock:
                self._evicting.discard(threading.current_thread())

    def sweep(self) -> int:
        """Remove containers idle for longer than `idle_s`; returns how many."""
        now = self.clock()
        with self._lock:
            expired = [
                c for idle in self._idle.values() for c in idle if now - c.last_used >= self.idle_s
            ]
            self._drop_idle(expired)
        for container in expired:
            container.destroy()
            self._forget_one()
        return len(expired)

    def close(self) -> None:
        """Remove every idle container, concurrently and within `CLOSE_ALL_S` for all of them
        (then killed); busy ones are removed when released."""
        with self._lock:
            self._closed = True
            idle = [c for containers in self._idle.values() for c in containers]
            self._idle.clear()
            self._lock.notify_all()
            waiting = [*self._retiring, *self._evicting]
        removals = {
            threading.Thread(target=self._retire_idle, args=(container,), daemon=True,
                             name="pasar-sandbox-close"): container
            for container in idle
        }  # fmt: skip
        for thread in removals:
            thread.start()
        deadline = time.monotonic() + CLOSE_ALL_S
        for thread in [*removals, *waiting]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for thread, container in removals.items():
            if thread.is_alive():  # its shutdown hooks outlived the bound: killed
                remove_container(container.api, container.id)

    def _retire_idle(self, container: SandboxContainer) -> None:
        try:
            container.destroy()
        finally:
            self._forget_one()

    def stats(self) -> PoolStats:
        with self._lock:
            idle = sum(len(c) for c in self._idle.values())
            return PoolStats(self._existing, idle, len(self._evicting))

    def _oldest_idle(self) -> SandboxContainer | None:
        candidates = [c for containers in self._idle.values() for c in containers]
        if not candidates:
            return None
        oldest = min(candidates, key=lambda c: c.last_used)
        self._drop_idle([oldest])
        return oldest

    def _drop_idle(self, containers: list[SandboxContainer]) -> None:
        for container in containers:
            idle = self._idle.get(container.key, [])
            if container in idle:
                idle.remove(container)
            if not idle:
                self._idle.pop(container.key, None)

    def _forget_one(self) -> None:
        with self._lock:
            self._existing -= 1
            self._lock.notify_all()
