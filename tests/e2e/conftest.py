"""End-to-end fixtures, and the check that every tool of the families these runs cover was
called successfully in some recorded run.

After each test, the tool results its app recorded (the executions' steps in the test's own
database) are added to a session-wide tally. When a family's run module ran in full, the session
fails if one of that family's catalogue tools never appears in it.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pasar_core.plugins import build_plugin_manager
from pasar_core.registry import build_registry
from pasar_core.services import Services
from pasar_core.storage.models import Execution
from sqlalchemy import select
from starlette.testclient import TestClient

# Each family, and the module whose agent runs must call every one of its tools.
RUN_MODULES = {
    "files": "test_runs_files.py",
    "postgres": "test_runs_postgres.py",
    "web": "test_runs_web.py",
}


@dataclass
class ToolCallTally:
    succeeded: set[str] = field(default_factory=set)
    complete_modules: set[str] = field(default_factory=set)
    partial_modules: set[str] = field(default_factory=set)


TALLY = pytest.StashKey[ToolCallTally]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = ToolCallTally()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note the run modules whose every test was selected (no -k, no single node id)."""
    selected: dict[str, set[str]] = {}
    modules: dict[str, types.ModuleType] = {}
    for item in items:
        if isinstance(item, pytest.Function) and item.path.name in RUN_MODULES.values():
            selected.setdefault(item.path.name, set()).add(item.originalname)
            modules[item.path.name] = item.module
    for name, module in modules.items():
        defined = {attr for attr in vars(module) if attr.startswith("test_")}
        if defined == selected[name] and name not in config.stash[TALLY].partial_modules:
            config.stash[TALLY].complete_modules.add(name)


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        item.config.stash[TALLY].partial_modules.add(item.path.name)
        item.config.stash[TALLY].complete_modules.discard(item.path.name)


def _succeeded_tool_calls(client: TestClient) -> set[str]:
    services: Services = client.app_state["services"]

    async def read() -> set[str]:
        async with services.sessionmaker() as session:
            runs = await session.scalars(select(Execution.steps))
            return {
                str(step["tool"])
                for steps in runs
                for step in steps
                if step.get("type") == "tool_result" and "error" not in step
            }

    assert client.portal is not None
    found: set[str] = client.portal.call(read)
    return found


@pytest.fixture
def client(client: TestClient, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The root `client`, whose runs' successful tool calls are tallied when the test ends."""
    yield client
    request.config.stash[TALLY].succeeded |= _succeeded_tool_calls(client)


def pytest_sessionfinish(session: pytest.Session) -> None:
    tally = session.config.stash[TALLY]
    if session.shouldstop or session.shouldfail or not tally.complete_modules:
        return  # stopped early (-x, a keyboard interrupt): the tally is incomplete
    registry = build_registry(build_plugin_manager())
    never = sorted(
        tool.spec.id
        for tool in registry.tools.values()
        if RUN_MODULES.get(tool.family.id) in tally.complete_modules
        and tool.spec.id not in tally.succeeded
    )
    if never:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "catalogue tools no agent run called successfully", red=True)
            reporter.write_line(", ".join(never), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
