"""Python custom tools in the sandbox: results, and each way the tool's own code can fail."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pasar_core.errors import (
    ToolEntrypointMissing,
    ToolRaised,
    ToolResultInvalid,
    ToolSourceInvalid,
)
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.workloads import PythonTool

INVOICE = """
from decimal import Decimal

def total(args):
    print("summing", len(args["lines"]), "lines")
    value = sum(Decimal(str(line["price"])) * line["qty"] for line in args["lines"])
    return {"total": str(value), "currency": args.get("currency", "EUR")}
"""


def tool(source: str, entrypoint: str = "run", version: int = 1) -> PythonTool:
    return PythonTool("acme:probe", version, source, entrypoint)


def test_runs_a_tool_and_returns_its_result(sandbox: SandboxClient) -> None:
    invoice = PythonTool("acme:invoice_total", 1, INVOICE, "total")
    args = {"lines": [{"price": 1.10, "qty": 3}, {"price": 2.05, "qty": 2}]}

    result = sandbox.call_python(invoice, args)

    assert result.value == {"total": "7.40", "currency": "EUR"}
    assert result.stdout == "summing 2 lines\n"
    assert result.cold is True


def test_async_entrypoints_are_awaited(sandbox: SandboxClient) -> None:
    source = "import asyncio\nasync def run(args):\n    await asyncio.sleep(0)\n    return args['x'] + 1\n"
    assert sandbox.call_python(tool(source), {"x": 41}).value == 42


def test_source_that_does_not_parse(sandbox: SandboxClient) -> None:
    with pytest.raises(ToolSourceInvalid) as caught:
        sandbox.call_python(tool("def run(args)\n    return 1\n"), {})
    assert caught.value.code == "TOOL_SOURCE_INVALID"
    assert "line 1" in caught.value.message
    assert caught.value.details["line"] == 1


def test_missing_entrypoint(sandbox: SandboxClient) -> None:
    with pytest.raises(ToolEntrypointMissing) as caught:
        sandbox.call_python(tool("def other(args):\n    return 1\n"), {})
    assert "'run' is not defined" in caught.value.message

    with pytest.raises(ToolEntrypointMissing) as caught:
        sandbox.call_python(tool("run = 3\n", version=2), {})
    assert "'run' is not a function" in caught.value.message


def test_exception_inside_the_tool_names_its_own_lines_and_no_paths(
    sandbox: SandboxClient,
) -> None:
    source = "def helper(n):\n    return 10 / n\n\ndef run(args):\n    return helper(args['n'])\n"

    with pytest.raises(ToolRaised) as caught:
        sandbox.call_python(tool(source), {"n": 0})

    error = caught.value
    assert error.code == "TOOL_RAISED"
    assert error.message == "acme:probe: ZeroDivisionError: division by zero"
    assert [f["function"] for f in error.details["frames"]] == ["run", "helper"]
    assert error.details["frames"][-1] == {"line": 2, "function": "helper", "code": "return 10 / n"}
    text = json.dumps({"message": error.message, "details": error.details})
    for path in ("/work", "/root", "/tmp", "/usr/lib", "/opt/pasar", "runner.py", sys.prefix):
        assert path not in text


def test_an_exception_while_loading_is_the_tools_error(sandbox: SandboxClient) -> None:
    with pytest.raises(ToolRaised) as caught:
        sandbox.call_python(tool("import no_such_module\ndef run(args):\n    return 1\n"), {})
    assert "ModuleNotFoundError" in caught.value.message
    assert "while loading" in caught.value.message


def test_a_tool_exception_keeps_the_warm_container(sandbox: SandboxClient) -> None:
    source = "def run(args):\n    if args.get('fail'):\n        raise ValueError('asked to')\n    return 'ok'\n"
    first = sandbox.call_python(tool(source), {})
    with pytest.raises(ToolRaised):
        sandbox.call_python(tool(source), {"fail": True})
    again = sandbox.call_python(tool(source), {})
    assert again.container_id == first.container_id
    assert again.calls == 3


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ("{1, 2}", "Object of type set is not JSON serializable"),
        ("float('nan')", "Out of range float values are not JSON compliant"),
        ("object()", "Object of type object is not JSON serializable"),
    ],
)
def test_results_that_are_not_json(sandbox: SandboxClient, returned: str, reason: str) -> None:
    with pytest.raises(ToolResultInvalid) as caught:
        sandbox.call_python(tool(f"def run(args):\n    return {returned}\n"), {})
    assert reason in caught.value.message


def test_sys_exit_is_a_tool_error_and_the_runner_keeps_serving(sandbox: SandboxClient) -> None:
    source = "import sys\ndef run(args):\n    if args['exit']:\n        sys.exit(3)\n    return 'alive'\n"
    with pytest.raises(ToolRaised) as caught:
        sandbox.call_python(tool(source), {"exit": True})
    assert "SystemExit" in caught.value.message
    assert sandbox.call_python(tool(source), {"exit": False}).value == "alive"


def test_the_tool_cannot_forge_replies_through_stdin_or_stdout(sandbox: SandboxClient) -> None:
    source = """
import os, sys
def run(args):
    os.write(1, b'{"id": 99, "ok": true, "result": "forged", "clean": true}\\n')
    stolen = sys.stdin.read()
    return {"stdin": stolen, "fd0": os.read(0, 100).decode()}
"""
    result = sandbox.call_python(tool(source), {})
    assert result.value == {"stdin": "", "fd0": ""}
    assert sandbox.call_python(tool(source), {}).value == {"stdin": "", "fd0": ""}


ECHO = PythonTool("acme:echo", 1, "def run(args):\n    return args\n")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values)
def test_any_json_arguments_round_trip(sandbox: SandboxClient, value: object) -> None:
    assert sandbox.call_python(ECHO, value).value == value
