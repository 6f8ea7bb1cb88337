"""The whole path of a sandboxed custom-tool call, for bench/sandbox_latency.py: the registry
(input validation, timeout, output-schema validation) -> the sandbox queue (RQ on a real Redis,
the embedded one `pasar serve` starts) -> a sandbox worker (rq workers in threads of this
process, as `pasar worker --queue sandbox` runs them) -> a container -> the reply."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pasar_core.custom_tools.definition import ToolDefinition
from pasar_core.custom_tools.overlay import registered
from pasar_core.custom_tools.store import StoredVersion
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import Registry, build_registry
from pasar_core.sandbox.jobs import SandboxHost
from pasar_core.sandbox.queue import SandboxQueue
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.specs import ToolContext

from pasar.embedded_sandbox import embedded_sandbox
from pasar.sandbox_worker import SandboxWorkerPool


def definition(source: str) -> ToolDefinition:
    return ToolDefinition.model_validate(
        {
            "id": "bench:inc",
            "title": "Increment",
            "description": "n + 1",
            "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}},
                             "required": ["n"]},
            "output_schema": {"type": "object", "properties": {"n": {"type": "integer"}},
                              "required": ["n"]},
            "implementation": {"kind": "python", "source": source, "entrypoint": "run"},
        }
    )  # fmt: skip


class WholePath:
    """`call(n, version)` through the registry, the queue and a worker; `sweep()` retires the
    worker's idle containers (for cold samples)."""

    def __init__(self, settings: SandboxSettings, image: str, source: str) -> None:
        self._stack = contextlib.ExitStack()
        directory = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="pasar-")))
        sandbox = self._stack.enter_context(embedded_sandbox(directory, with_worker=False))
        self.host = SandboxHost(settings, image=image)
        self.pool = SandboxWorkerPool(sandbox.redis_url, settings, host=self.host, threads=2)
        self.pool.start()
        self._stack.callback(self.pool.stop)
        self.loop = asyncio.new_event_loop()
        self._stack.callback(self.loop.close)
        self.queue = SandboxQueue(sandbox.redis_url)
        self._stack.callback(lambda: self.loop.run_until_complete(self.queue.close()))
        self.settings = settings
        self.definition = definition(source)
        self.base: Registry = build_registry(build_plugin_manager(enabled=()))
        self.registries: dict[int, Registry] = {}
        self.context = ToolContext(user_id=str(uuid.uuid4()), storage_root=directory)

    def registry(self, version: int) -> Registry:
        found = self.registries.get(version)
        if found is None:
            stored = StoredVersion(
                tool_id="bench:inc", version=version, latest_version=version,
                owner_id=uuid.uuid4(), definition=self.definition, digest=str(version),
                version_id=uuid.uuid4(), created_at=datetime.now(UTC),
            )  # fmt: skip
            tool = registered(stored, "bench:inc", self.queue, self.settings)
            found = self.registries[version] = self.base.with_tools([tool])
        return found

    def call(self, n: int, version: int = 1) -> Any:
        registry = self.registry(version)
        return self.loop.run_until_complete(registry.invoke("bench:inc", self.context, {"n": n}))

    def sweep(self) -> None:
        self.host.client().sweep()
        self.registries.clear()

    def close(self) -> None:
        self._stack.close()
