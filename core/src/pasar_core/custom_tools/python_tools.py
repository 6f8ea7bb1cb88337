"""A Python custom tool's `run`: one request on the sandbox queue, answered by a sandbox worker.

The caller never talks to Docker. The worker runs the tool's entry function in a warm container
of this tool version (`pasar_core.sandbox`), and the reply's result is returned like any tool's
result: the registry then checks it against the output schema. A tool with `network.allow_hosts`
reaches those hosts through the worker's egress proxy (`pasar_core.sandbox.egress`); which of them
the operator opened to private addresses is decided here, at each call, from the current bound.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pasar_core.errors import SandboxUnavailable
from pasar_core.net.guard import ALLOW_BOUND_EXTRA
from pasar_core.sandbox.allow_hosts import opened_hosts
from pasar_core.sandbox.queue import NO_QUEUE, QUEUE_SLACK_S, SandboxQueue
from pasar_core.sandbox.requests import python_request
from pasar_core.sandbox.workloads import PythonTool
from pasar_core.specs import ToolContext, ToolRun

RUN_SLACK_S = QUEUE_SLACK_S + 5.0
"""A python tool's `ToolSpec.timeout_s` is its sandbox timeout plus this: the sandbox's own,
clearer errors (SANDBOX_TIMEOUT, SANDBOX_BUSY) come before the registry's TOOL_TIMEOUT."""


def python_run(queue: SandboxQueue | None, tool: PythonTool) -> ToolRun:
    async def run(ctx: ToolContext, args: dict[str, Any]) -> Any:
        if queue is None:
            raise SandboxUnavailable(NO_QUEUE, details={"tool": tool.tool_id})
        called = tool
        if tool.network.allow_hosts:
            opened = opened_hosts(tool.network.allow_hosts, ctx.extras.get(ALLOW_BOUND_EXTRA))
            called = replace(tool, network=replace(tool.network, opened_hosts=opened))
        reply = await queue.call(python_request(called, args), timeout_s=tool.limits.timeout_s)
        return reply.get("result")

    return run
