"""Overhead of one agent run through pasar's API, as a ratio to a raw `create_agent` run.

One process, one event loop (uvloop, as `pasar serve` uses): the app served by uvicorn on
127.0.0.1 (real loopback HTTP, lifespan on), an httpx client, an embedded PostgreSQL in a temp
dir. Each iteration runs, in alternating order:

- `bare`: `langchain.agents.create_agent(model, [txt_write]).ainvoke(...)` with the same scripted
  model (instant: a txt_write tool call, then a final answer) and a tool that does the same work
  (pasar's registry validates the input, the files plugin writes the file, the output is
  validated);
- `service`: `pasar_core.executions.service.start_execution(..., wait=True)` called directly
  (everything pasar does for a run, without HTTP and authentication);
- `api`: `POST /agents/{id}/execute` with `wait: true` over HTTP.

    uv run python bench/run_overhead.py [--iterations 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SCRIPT: list[dict[str, Any]] = [
    {"tool_calls": [{"name": "txt_write", "args": {"path": "bench/out.txt", "content": "hello"}}]},
    {"content": "Wrote the note."},
]
EXPECTED_STEPS = ["model_call", "tool_call", "tool_result", "model_call"]


class StatementCounter:
    """Counts SQL statements and commits sent through SQLAlchemy (not the LISTEN connection)."""

    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0
        self.notifies = 0
        self.recent: list[str] = []
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._commit)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements += 1
        self.recent.append(" ".join(statement.split())[:160])
        if "pg_notify" in statement:
            self.notifies += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1
        self.recent.append("COMMIT")

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.commits, self.notifies


def bare_tool(registry: Any, storage_root: Path) -> Any:
    from langchain_core.tools import StructuredTool
    from pasar_core.specs import ToolContext

    spec = registry.tool("txt:write").spec
    context = ToolContext(user_id="bench", storage_root=storage_root)

    async def call(**args: Any) -> str:
        return json.dumps(await registry.invoke("txt:write", context, args), default=str)

    return StructuredTool.from_function(
        coroutine=call,
        name=spec.langchain_name,
        description=spec.description,
        args_schema=dict(spec.input_schema),
    )


async def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> dict[str, Any]:
    from pasar_core.accounts.credentials import credential_from_headers
    from pasar_core.accounts.service import authenticate
    from pasar_core.executions.requests import ExecuteRequest
    from pasar_core.executions.service import start_execution
    from pasar_core.settings import Settings

    from pasar.app import create_app

    settings = Settings(
        data_dir=data_dir, database_url=database_url, secret_key=common.SECRET_KEY,
        rate_limit_auth="off", rate_limit_writes="off", rate_limit_runs="off",
    )  # fmt: skip
    settings.ensure_data_dir()
    port = common.free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        services = server.lifespan.state["services"]  # what request.state.services is
        runs = server.lifespan.state["runs"]  # the execution runtime (request.state.runs)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            headers = await common.sign_up(client)
            config_ = common.scripted_config(SCRIPT)
            agent_id = await common.create_agent_via_api(client, headers, ["txt:write"], config_)
            principal = await authenticate(
                services, credential_from_headers(httpx.Headers(headers)) or ""
            )
            tool = bare_tool(services.registry, data_dir / "bare-files")
            request = ExecuteRequest.model_validate({"input": "write a note"})
            counter = StatementCounter()

            async def bare() -> None:
                agent = common.bare_agent(SCRIPT, 0, [tool])
                result = await agent.ainvoke(
                    {"messages": [{"role": "user", "content": "write a note"}]}
                )
                assert result["messages"][-1].content == "Wrote the note."

            async def service() -> None:
                view = await start_execution(runs, principal, agent_id, request)
                assert view.status == "succeeded", view

            async def api() -> None:
                response = await client.post(
                    f"/agents/{agent_id}/execute", json={"input": "write a note"}, headers=headers
                )
                body = response.json()
                assert response.status_code == 200, body
                assert body["status"] == "succeeded", body
                assert [step["type"] for step in body["steps"]] == EXPECTED_STEPS, body

            variants = {"bare": bare, "service": service, "api": api}
            timings: dict[str, list[float]] = {name: [] for name in variants}
            db_counts: dict[str, list[int]] = {"service": [0, 0, 0], "api": [0, 0, 0]}
            order = list(variants)
            profiler = cProfile.Profile() if args.profile else None
            for iteration in range(args.warmup + args.iterations):
                order = order[1:] + order[:1]  # rotate: no variant always runs first
                for name in order:
                    before = counter.snapshot()
                    counter.recent = []
                    profiled = profiler if name == "api" and iteration >= args.warmup else None
                    if profiled is not None:
                        profiled.enable()
                    started = time.perf_counter()
                    await variants[name]()
                    elapsed = time.perf_counter() - started
                    if profiled is not None:
                        profiled.disable()
                    if iteration >= args.warmup:
                        timings[name].append(elapsed)
                        if name in db_counts:
                            after = counter.snapshot()
                            for i in range(3):
                                db_counts[name][i] += after[i] - before[i]
            if profiler is not None:
                profiler.dump_stats(args.profile)
            if args.show_statements:
                await api()
                await asyncio.sleep(0.5)  # the journal's last batch
                print("\n".join(counter.recent))
    finally:
        server.should_exit = True
        await serving

    stats = {name: common.summary_ms(values) for name, values in timings.items()}
    base = stats["bare"]
    per_run = {
        name: {
            "sql_statements": round(counts[0] / args.iterations, 1),
            "transactions_committed": round(counts[1] / args.iterations, 1),
            "pg_notify": round(counts[2] / args.iterations, 1),
        }
        for name, counts in db_counts.items()
    }
    return {
        "transport": "uvicorn (uvloop, httptools) on 127.0.0.1, same process and event loop",
        "iterations": args.iterations,
        "warmup": args.warmup,
        "script": SCRIPT,
        "stats": stats,
        "ratio_median": {
            name: round(stat["median_ms"] / base["median_ms"], 1) for name, stat in stats.items()
        },
        "ratio_p90": {
            name: round(stat["p90_ms"] / base["p90_ms"], 1) for name, stat in stats.items()
        },
        "db_per_run": per_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--show-statements", action="store_true",
                        help="print the statements of one more api run")  # fmt: skip
    parser.add_argument("--profile", help="write a cProfile of the api variant to this file")
    args = parser.parse_args()
    if not 1 <= args.iterations <= 5000 or not 0 <= args.warmup <= 1000:
        parser.error("--iterations must be 1..5000 and --warmup 0..1000")

    import uvloop

    data_dir = common.temp_dir("pasar-bench-data-")
    try:
        with (
            common.embedded_postgres() as (url, _pgdata),
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            result = runner.run(run(args, url, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    result["machine"] = common.machine()
    path = common.write_results("run_overhead", result)
    stats = result["stats"]
    rows = [
        [
            name,
            stats[name]["median_ms"],
            stats[name]["p90_ms"],
            f"{result['ratio_median'][name]}x",
            f"{result['ratio_p90'][name]}x",
            result["db_per_run"].get(name, {}).get("transactions_committed", 0),
            result["db_per_run"].get(name, {}).get("sql_statements", 0),
        ]
        for name in ("bare", "service", "api")
    ]
    print(f"\nrun overhead: {args.iterations} iterations after {args.warmup} warmup, interleaved")
    print(
        common.table(
            ["variant", "median ms", "p90 ms", "ratio median", "ratio p90", "tx/run", "SQL/run"],
            rows,
        )
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
