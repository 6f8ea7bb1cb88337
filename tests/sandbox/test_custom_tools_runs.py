"""Python custom tools through the whole path: registered with REST or GraphQL, called by an
agent run (scripted model) through the sandbox queue, a real rq sandbox worker and a hardened
container, the result checked against the output schema by the core."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.e2e.runs import call, create_agent, error, execute, run_tools, scripted

Headers = dict[str, str]

TOTAL_SOURCE = """
def run(args):
    print("adding", len(args["amounts"]), "amounts")
    return {"total": round(sum(args["amounts"]), 2), "currency": args.get("currency", "EUR")}
"""


def total_tool(
    tool_id: str = "acme:invoice_total", source: str = TOTAL_SOURCE, **extra: Any
) -> dict[str, Any]:
    return {
        "id": tool_id,
        "title": "Invoice total",
        "description": "Adds up invoice amounts.",
        "input_schema": {
            "type": "object",
            "properties": {
                "amounts": {"type": "array", "items": {"type": "number"}, "maxItems": 1000},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
            "required": ["amounts"],
            "additionalProperties": False,
        },
        "output_schema": {
            "type": "object",
            "properties": {"total": {"type": "number"}, "currency": {"type": "string"}},
            "required": ["total", "currency"],
        },
        "effect": "read",
        "timeout_s": 10,
        "limits": {"memory_mb": 128, "cpus": 0.5},
        "network": {"allow_hosts": []},
        "implementation": {"kind": "python", "source": source, "entrypoint": "run"},
        **extra,
    }


def tool_steps(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in run["steps"] if step["type"] == "tool_result"]


def test_registered_with_rest_and_called_in_a_run(
    tools_client: TestClient, tools_user: Any
) -> None:
    headers = tools_user()
    created = tools_client.post("/tools", json=total_tool(), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["tool_id"] == "acme:invoice_total"
    assert body["version"] == 1
    assert body["tool"]["source"] == "custom"
    assert body["tool"]["kind"] == "python"

    listed = tools_client.get("/tools", headers=headers).json()["tools"]
    mine = [tool for tool in listed if tool["source"] == "custom"]
    assert [tool["id"] for tool in mine] == ["acme:invoice_total"]
    assert any(tool["id"] == "txt:read" for tool in listed)  # beside the installed ones

    agent = create_agent(
        tools_client, headers, ["acme:invoice_total"],
        scripted(call("acme:invoice_total", amounts=[10.5, 20.25, 3], currency="USD")),
    )  # fmt: skip
    run = execute(tools_client, headers, agent)
    [result] = tool_steps(run)
    assert result["tool"] == "acme:invoice_total"
    assert result["result"] == {"total": 33.75, "currency": "USD"}


def test_registered_with_graphql_updated_and_pinned(
    tools_client: TestClient, tools_user: Any
) -> None:
    headers = tools_user()

    def graphql(query: str, **variables: Any) -> dict[str, Any]:
        response = tools_client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    registered = graphql(
        "mutation($input: JSON!) { registerTool(input: $input) { toolId version tool { kind versions } } }",
        input=total_tool("gq:total"),
    )
    assert registered["data"]["registerTool"] == {
        "toolId": "gq:total", "version": 1, "tool": {"kind": "python", "versions": [1]}
    }  # fmt: skip
    doubled = TOTAL_SOURCE.replace('round(sum(args["amounts"]), 2)', '2 * sum(args["amounts"])')
    updated = graphql(
        "mutation($id: String!, $input: JSON!) { updateTool(id: $id, input: $input) { version } }",
        id="gq:total",
        input=total_tool("gq:total", doubled),
    )
    assert updated["data"]["updateTool"] == {"version": 2}
    tools = graphql("{ tools { id source version } }")["data"]["tools"]
    assert {"id": "gq:total", "source": "custom", "version": 2} in tools

    # One agent pins version 1, the other follows the latest: each gets its own version.
    # The model sees a pinned version as `gq_total_v1`.
    pinned_call = {"tool_calls": [{"name": "gq_total_v1", "args": {"amounts": [1, 2]}}]}
    pinned = create_agent(tools_client, headers, ["gq:total@1"], scripted(pinned_call))
    latest = create_agent(tools_client, headers, ["gq:total"],
                          scripted(call("gq:total", amounts=[1, 2])))  # fmt: skip
    assert tool_steps(execute(tools_client, headers, pinned))[0]["result"]["total"] == 3
    assert tool_steps(execute(tools_client, headers, latest))[0]["result"]["total"] == 6

    # A third version is picked up by the same agent (no stale compiled graph).
    tripled = TOTAL_SOURCE.replace('round(sum(args["amounts"]), 2)', '3 * sum(args["amounts"])')
    graphql(
        "mutation($id: String!, $input: JSON!) { updateTool(id: $id, input: $input) { version } }",
        id="gq:total",
        input=total_tool("gq:total", tripled),
    )
    assert tool_steps(execute(tools_client, headers, latest))[0]["result"]["total"] == 9
    assert (
        graphql('mutation { deleteTool(id: "gq:total") }')["errors"][0]["extensions"]["code"]
        == "TOOL_IN_USE"
    )


BROKEN_SOURCES = {
    "acme:wrong_output": 'def run(args):\n    return {"total": "not a number", "currency": 1}\n',
    "acme:raises": 'def run(args):\n    raise ValueError("no invoices today")\n',
    "acme:spins": "def run(args):\n    while True:\n        pass\n",
    "acme:hog": "def run(args):\n    blocks = []\n    while True:\n"
    "        blocks.append(bytearray(16 * 1024 * 1024))\n",
    "acme:floods": 'import sys\ndef run(args):\n    while True:\n        sys.stdout.write("x" * 65536)\n',
}


def test_broken_tools_end_as_typed_errors_and_the_worker_keeps_serving(
    tools_client: TestClient, tools_user: Any
) -> None:
    headers = tools_user()
    for tool_id, source in BROKEN_SOURCES.items():
        created = tools_client.post(
            "/tools", json=total_tool(tool_id, source, timeout_s=2), headers=headers
        )
        assert created.status_code == 201, created.text
    assert tools_client.post("/tools", json=total_tool(), headers=headers).status_code == 201
    ids = [*BROKEN_SOURCES, "acme:invoice_total"]
    replies = [call(tool_id, amounts=[1, 2]) for tool_id in ids]
    results = run_tools(tools_client, headers, ids, *replies)
    codes = {step["tool"]: error(step).split(":", 1)[0] for step in results[:-1]}
    assert codes == {
        "acme:wrong_output": "TOOL_OUTPUT_INVALID",
        "acme:raises": "TOOL_RAISED",
        "acme:spins": "SANDBOX_TIMEOUT",
        "acme:hog": "SANDBOX_MEMORY",
        "acme:floods": "SANDBOX_OUTPUT_TOO_LARGE",
    }, [step.get("error") for step in results]
    assert "no invoices today" in error(results[1])
    # After all of that, the same workers still answer.
    assert results[-1]["result"] == {"total": 3, "currency": "EUR"}
