"""10,000 connections at once, one `GET /agents/{id}` each: pasar against Starlette + asyncpg.

The client (this process, asyncio on uvloop) opens every connection at the same moment, sends
one request with `Connection: close` and reads the answer; it counts answers by status, errors
by kind (refused, reset, timed out) and the latency of each from its connect. pasar and the bare
app run as one process each on the same HTTP server; bursts alternate between them. The client
shares the two cores with the servers and PostgreSQL, so absolute times are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import _load as load


async def one(port: int, request: bytes, timeout_s: float) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                answer = await reader.read()  # until the server closes (Connection: close)
            finally:
                writer.close()
    except TimeoutError:
        return "timeout", time.perf_counter() - started
    except OSError as error:
        return type(error).__name__, time.perf_counter() - started
    status = answer[9:12].decode(errors="replace") if answer.startswith(b"HTTP/1.1 ") else "bad"
    return status, time.perf_counter() - started


async def burst(
    port: int, path: str, headers: dict[str, str], count: int, timeout_s: float
) -> dict[str, Any]:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             *(f"{name}: {value}" for name, value in headers.items())]  # fmt: skip
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(port, request, timeout_s) for _ in range(count)))
    wall_s = time.perf_counter() - started
    kinds = Counter(kind for kind, _ in outcomes)
    answered = [seconds for kind, seconds in outcomes if kind.isdigit()]
    every = [seconds for _, seconds in outcomes]
    return {
        "connections": count,
        "wall_s": round(wall_s, 2),
        "ok_200": kinds.get("200", 0),
        "outcomes": dict(kinds),
        "errors": count - kinds.get("200", 0),
        "answered": len(answered),
        "p50_ms": round(common.percentile(every, 0.5) * 1000, 1),
        "p90_ms": round(common.percentile(every, 0.9) * 1000, 1),
        "p99_ms": round(common.percentile(every, 0.99) * 1000, 1),
        "max_ms": round(max(every) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one request may take")
    parser.add_argument("--pool-timeout", type=float, default=5.0,
                        help="PASAR_DB_POOL_TIMEOUT for pasar (5 s: pasar's default)")  # fmt: skip
    args = parser.parse_args()
    if not 1 <= args.connections <= 15_000 or not 1 <= args.rounds <= 5:
        parser.error("--connections must be 1..15000 and --rounds 1..5")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < args.connections + 500:
        parser.error(f"the open-file limit ({hard}) is below --connections + 500")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers

    import uvloop

    started_load = load.loadavg()
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "pasar": []}
    with load.pasar_beside_bare(
        "bare_rest", server=args.server, pool_timeout_s=args.pool_timeout
    ) as side:
        path = f"/agents/{side.seed.agent_id}"
        targets = {"bare": (side.bare, {}), "pasar": (side.pasar, side.seed.headers)}
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            for server, headers in targets.values():  # warm both at a small scale
                runner.run(burst(port_of(server), path, headers, 200, args.timeout))
            for round_no in range(args.rounds):
                order = ("bare", "pasar") if round_no % 2 == 0 else ("pasar", "bare")
                for name in order:
                    server, headers = targets[name]
                    time.sleep(2)  # let TIME_WAIT and the servers settle
                    result = runner.run(burst(port_of(server), path, headers,
                                              args.connections, args.timeout))  # fmt: skip
                    result["loadavg"] = load.loadavg()
                    runs[name].append(result)
    chosen = {name: max(found, key=lambda run: (run["ok_200"], -run["p99_ms"]))
              for name, found in runs.items()}  # fmt: skip
    result = {"server": args.server, "connections": args.connections,
              "pasar_db_pool_timeout_s": args.pool_timeout, "rounds": runs,
              "best": chosen, "machine": common.machine(), "loadavg_at_start": started_load,
              "somaxconn": Path("/proc/sys/net/core/somaxconn").read_text().strip()}  # fmt: skip
    suffix = "" if args.pool_timeout == 5.0 else f"-pool{args.pool_timeout:g}s"
    out = common.write_results(f"burst-{args.server}-{args.connections}{suffix}", result)
    rows = [[name, i + 1, run["ok_200"], run["errors"], run["outcomes"], run["p50_ms"],
             run["p99_ms"], run["max_ms"], run["wall_s"], run["loadavg"][0]]
            for name, found in runs.items() for i, run in enumerate(found)]  # fmt: skip
    print(
        f"\n{args.connections} connections at once on {args.server}, "
        f"PASAR_DB_POOL_TIMEOUT {result['pasar_db_pool_timeout_s']} s"
    )
    print(common.table(["app", "round", "200", "errors", "outcomes", "p50 ms", "p99 ms",
                        "max ms", "wall s", "load"], rows))  # fmt: skip
    print(f"\nwritten to {out}")


def port_of(server: load.Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


if __name__ == "__main__":
    main()
