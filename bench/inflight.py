"""In-flight capacity: N agent runs at once, each one model call that waits `--delay-ms`.

Starts everything itself: an embedded PostgreSQL in a temp dir, `pasar serve` as a separate
process on 127.0.0.1 (so its RSS is the server's alone), and for `--executor rq` a redis-server
on 127.0.0.1 and W `pasar worker` processes (each runs up to `--worker-concurrency` runs at once). The driver submits N fire-and-forget runs
(`POST /agents/{id}/execute` with `wait: false`, at most `--submit-concurrency` requests in
flight), then polls the executions table (one SQL query every 0.5 s, not N HTTP polls) until
every run is terminal or `--timeout` passes. A sampler records the server's (and workers')
RSS and the number of database connections.

Baseline, in the same invocation before pasar starts: the same N runs as
`create_agent(...).ainvoke(...)` under asyncio.gather in a bare Python process (uvloop, like
`pasar serve`); ratio = pasar completion time / bare completion time.

    uv run python bench/inflight.py --executor inline --n 1000
    uv run python bench/inflight.py --executor inline --n 10000 --max-concurrency 10000
    uv run python bench/inflight.py --executor rq --workers 1 --n 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SCRIPT = [{"content": "done"}]
TERMINAL = ("succeeded", "failed", "limit_exceeded", "cancelled")
SAMPLE_S = 0.25


# --- the bare baseline (runs in its own process) --------------------------------------------


async def _bare(n: int, delay_ms: int) -> dict[str, Any]:
    peak = 0

    async def sample() -> None:
        nonlocal peak
        import psutil

        me = psutil.Process()
        while True:
            peak = max(peak, me.memory_info().rss)
            await asyncio.sleep(SAMPLE_S)

    latencies: list[float] = []

    async def one(i: int) -> str:
        begun = time.perf_counter()
        agent = common.bare_agent(SCRIPT, delay_ms)
        result = await agent.ainvoke({"messages": [{"role": "user", "content": f"go {i}"}]})
        latencies.append(time.perf_counter() - begun)
        return str(result["messages"][-1].content)

    common.bare_agent(SCRIPT, 0)  # imports and first compile outside the clock
    cpu_start = sum(os.times()[:2])
    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    sampler.cancel()
    errors = sum(1 for r in results if r != "done")
    return {
        "n": n,
        "completion_s": round(elapsed, 3),
        "runs_per_s": round(n / elapsed, 1),
        "peak_rss_mib": round(
            max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20, 1
        ),
        "cpu_s": round(sum(os.times()[:2]) - cpu_start, 2),
        "errors": errors,
        "run_latency_p50_s": round(common.percentile(latencies, 0.5), 3),
        "run_latency_p99_s": round(common.percentile(latencies, 0.99), 3),
    }


def bare_main(n: int, delay_ms: int) -> None:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(_bare(n, delay_ms))))


def run_bare_baseline(n: int, delay_ms: int, timeout_s: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--bare", "--n", str(n), "--delay-ms", str(delay_ms)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=True
        )
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"did not finish within {timeout_s:g} s"}
    except subprocess.CalledProcessError as error:
        return {"n": n, "error": error.stderr[-2000:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- pasar ----------------------------------------------------------------------------------


class Sampler:
    """RSS of the server and of each worker's process tree, and database connections."""

    def __init__(self, server_pid: int, worker_pids: list[int], pool: Any) -> None:
        self.server_pid = server_pid
        self.worker_pids = worker_pids
        self.pool = pool
        self.server_peak_rss = 0
        self.worker_peak_rss: dict[int, int] = dict.fromkeys(worker_pids, 0)
        self.worker_main_peak_rss: dict[int, int] = dict.fromkeys(worker_pids, 0)
        self.horse_peak_rss = 0
        self.peak_db_connections = 0
        self.peak_db_by_state: Counter[str] = Counter()
        self.peak_running = 0
        self.peak_in_flight = 0  # queued + running
        self.samples = 0

    async def run(self) -> None:
        import psutil

        while True:
            with contextlib.suppress(psutil.Error):  # `pasar serve` and its worker processes
                server = psutil.Process(self.server_pid)
                rss = server.memory_info().rss
                for child in server.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        rss += child.memory_info().rss
                self.server_peak_rss = max(self.server_peak_rss, rss)
            for pid in self.worker_pids:
                with contextlib.suppress(psutil.Error):
                    main = psutil.Process(pid)
                    main_rss = main.memory_info().rss
                    total = main_rss
                    for child in main.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            child_rss = child.memory_info().rss
                            total += child_rss
                            if "scheduler" not in " ".join(child.cmdline()).lower():
                                self.horse_peak_rss = max(self.horse_peak_rss, child_rss)
                    self.worker_main_peak_rss[pid] = max(self.worker_main_peak_rss[pid], main_rss)
                    self.worker_peak_rss[pid] = max(self.worker_peak_rss[pid], total)
            with contextlib.suppress(Exception):
                rows = await self.pool.fetch(
                    "SELECT coalesce(state, '?') AS state, count(*) AS n FROM pg_stat_activity"
                    " WHERE datname = current_database() AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid() GROUP BY 1"
                )
                by_state = Counter({row["state"]: int(row["n"]) for row in rows})
                total_connections = sum(by_state.values())
                if total_connections > self.peak_db_connections:
                    self.peak_db_connections = total_connections
                    self.peak_db_by_state = by_state
            with contextlib.suppress(Exception):
                row = await self.pool.fetchrow(
                    "SELECT count(*) FILTER (WHERE status = 'running') AS running,"
                    " count(*) FILTER (WHERE status IN ('queued', 'running')) AS in_flight"
                    " FROM executions"
                )
                self.peak_running = max(self.peak_running, int(row["running"]))
                self.peak_in_flight = max(self.peak_in_flight, int(row["in_flight"]))
            self.samples += 1
            await asyncio.sleep(SAMPLE_S)


def mib(value: float) -> float:
    return round(value / 2**20, 1)


async def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"pasar serve exited:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise SystemExit(f"pasar serve did not become healthy:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def drive(
    args: argparse.Namespace,
    base_url: str,
    database_url: str,
    server: subprocess.Popen[bytes],
    workers: list[subprocess.Popen[bytes]],
    redis_url: str | None = None,
) -> dict[str, Any]:
    import asyncpg
    import httpx

    dsn = database_url
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    sampler = Sampler(server.pid, [w.pid for w in workers], pool)
    sampling = asyncio.create_task(sampler.run())
    limits = httpx.Limits(max_connections=args.submit_concurrency)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
            headers = await common.sign_up(client)
            config = common.scripted_config(SCRIPT, args.delay_ms)
            config["limits"] = {"timeout_s": max(60, args.timeout)}
            agent_id = await common.create_agent_via_api(client, headers, [], config)
            body = {"input": "go", "parameters": {"wait": args.wait, "executor": args.executor}}
            answered: list[float] = []  # --wait: each request's time to its final answer
            gate = asyncio.Semaphore(args.submit_concurrency)
            http_errors: Counter[str] = Counter()

            lost: list[str] = []  # keys whose request got no answer at the first attempt
            acknowledged: set[str] = set()
            answered_ids: dict[str, str] = {}  # key -> the execution id its answer named
            retried_ids: dict[str, str] = {}  # key -> the execution id a retry answered
            busy_first: list[str] = []  # keys answered 503 or 409 at the first attempt
            replayed: list[str] = []  # keys whose final answer was a replay

            async def post(key: str) -> httpx.Response:
                extra = {"Idempotency-Key": key} if args.idempotency else {}
                return await client.post(
                    f"/agents/{agent_id}/execute", json=body, headers=headers | extra
                )

            async def submit(i: int) -> None:
                if args.submit == "enqueue":
                    return  # all at once below
                key = f"bench-{i}"
                async with gate:
                    begun = time.perf_counter()
                    response = None
                    for attempt in range(1 + (args.retries if args.idempotency else 0)):
                        try:
                            response = await post(key)
                        except httpx.TransportError as error:
                            if attempt == 0:
                                http_errors[type(error).__name__] += 1
                                lost.append(key)
                            response = None
                            continue
                        if response.status_code not in (409, 503) or not args.idempotency:
                            break
                        # Busy (503), or the key's first request still going (409): a client
                        # retries with the same key after Retry-After; the key answers the
                        # run if the busy request had created one.
                        if attempt == 0:
                            busy_first.append(key)
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    if response is None:
                        return
                    if response.status_code not in (200, 202):
                        http_errors[f"HTTP {response.status_code}"] += 1
                        return
                    acknowledged.add(key)
                    if key in lost:
                        retried_ids[key] = response.json()["execution_id"]
                    if response.headers.get("idempotent-replayed") == "true":
                        replayed.append(key)
                    answered_ids[key] = response.json()["execution_id"]
                    if args.wait and response.json().get("status") == "succeeded":
                        answered.append(time.perf_counter() - begun)

            cpu_before = {"server": common.tree_cpu_s(server.pid)}
            cpu_before |= {f"worker{i}": common.tree_cpu_s(w.pid) for i, w in enumerate(workers)}
            first_submit = datetime.now(UTC)
            t0 = time.perf_counter()
            if args.submit == "enqueue":
                assert redis_url is not None
                await enqueue_directly(pool, redis_url, agent_id, args.n)
            else:
                await asyncio.gather(*(submit(i) for i in range(args.n)))
            submission_s = time.perf_counter() - t0
            submitted = len(acknowledged) if args.submit == "api" else args.n

            deadline = t0 + args.timeout
            progress: list[tuple[float, int]] = []
            while True:
                terminal = await pool.fetchval(
                    "SELECT count(*) FROM executions WHERE agent_id = $1 AND status = ANY($2)",
                    agent_id_uuid(agent_id), list(TERMINAL),
                )  # fmt: skip
                progress.append((round(time.perf_counter() - t0, 1), int(terminal)))
                if terminal >= submitted or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.5)
            waited_s = time.perf_counter() - t0
            cpu_after = {"server": common.tree_cpu_s(server.pid)}
            cpu_after |= {f"worker{i}": common.tree_cpu_s(w.pid) for i, w in enumerate(workers)}

            rows = await pool.fetch(
                "SELECT status, count(*) AS n FROM executions WHERE agent_id = $1 GROUP BY 1",
                agent_id_uuid(agent_id),
            )
            statuses = {row["status"]: int(row["n"]) for row in rows}
            timing = await pool.fetchrow(
                "SELECT max(finished_at) AS last_finish, min(started_at) AS first_start,"
                " max(started_at) AS last_start,"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
                "   finished_at - created_at)) AS p50,"
                " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM"
                "   finished_at - created_at)) AS p90,"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
                "   finished_at - created_at)) AS p99,"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
                "   started_at - created_at)) AS queue_p50"
                " FROM executions WHERE agent_id = $1 AND status = 'succeeded'",
                agent_id_uuid(agent_id),
            )
            error_rows = await pool.fetch(
                "SELECT left(coalesce(error, '(none)'), 160) AS error, count(*) AS n"
                " FROM executions WHERE agent_id = $1 AND status <> 'succeeded'"
                " GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
                agent_id_uuid(agent_id),
            )
            max_connections = await pool.fetchval("SHOW max_connections")
            created_runs = await pool.fetchval(
                "SELECT count(*) FROM executions WHERE agent_id = $1", agent_id_uuid(agent_id)
            )
            lost_check = await check_lost(pool, lost, retried_ids) if lost else {}
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await pool.close()

    succeeded = statuses.get("succeeded", 0)
    last_finish = timing["last_finish"] if timing else None
    completion_s = (last_finish - first_submit).total_seconds() if last_finish else None
    all_done = sum(statuses.get(s, 0) for s in TERMINAL) >= args.n
    return {
        "submitted_ok": submitted,
        "http_errors": dict(http_errors),
        "idempotency_keys": args.idempotency,
        "acknowledged": len(acknowledged) if args.submit == "api" else args.n,
        "runs_created": int(created_runs),
        "runs_created_minus_acknowledged": (
            int(created_runs) - len(acknowledged) if args.submit == "api" else 0
        ),
        "lost_submissions": lost_check,
        "busy_at_first_attempt": len(busy_first) if args.submit == "api" else 0,
        "answered_by_replay": len(replayed) if args.submit == "api" else 0,
        "distinct_runs_acknowledged": len(set(answered_ids.values())),
        "submission_s": round(submission_s, 3),
        "submissions_per_s": round(args.n / submission_s, 1),
        "completion_s": round(completion_s, 3) if completion_s and all_done else None,
        "last_finish_s": round(completion_s, 3) if completion_s else None,
        "all_terminal": all_done,
        "waited_s": round(waited_s, 1),
        "runs_per_s": round(succeeded / completion_s, 1) if completion_s and all_done else None,
        "statuses": statuses,
        "errors": args.n - succeeded,
        "error_samples": {row["error"]: int(row["n"]) for row in error_rows},
        "run_latency_p50_s": round(timing["p50"], 3) if timing and timing["p50"] else None,
        "run_latency_p90_s": round(timing["p90"], 3) if timing and timing["p90"] else None,
        "run_latency_p99_s": round(timing["p99"], 3) if timing and timing["p99"] else None,
        "client_answers_succeeded": len(answered) if args.wait else None,
        "client_latency_p50_s": round(common.percentile(answered, 0.5), 3) if answered else None,
        "client_latency_p90_s": round(common.percentile(answered, 0.9), 3) if answered else None,
        "client_latency_p99_s": round(common.percentile(answered, 0.99), 3) if answered else None,
        "client_latency_max_s": round(max(answered), 3) if answered else None,
        "queue_wait_p50_s": (
            round(timing["queue_p50"], 3) if timing and timing["queue_p50"] else None
        ),
        "server_peak_rss_mib": mib(sampler.server_peak_rss),
        "worker_peak_rss_mib": [mib(v) for v in sampler.worker_peak_rss.values()],
        "worker_main_peak_rss_mib": [mib(v) for v in sampler.worker_main_peak_rss.values()],
        "work_horse_peak_rss_mib": mib(sampler.horse_peak_rss),
        "peak_running": sampler.peak_running,
        "peak_in_flight": sampler.peak_in_flight,
        "peak_db_connections": sampler.peak_db_connections,
        "peak_db_connections_by_state": dict(sampler.peak_db_by_state),
        "db_max_connections": int(max_connections),
        "cpu_s": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_before},
        "progress": progress[:: max(1, len(progress) // 40)],
    }


async def check_lost(pool: Any, lost: list[str], retried_ids: dict[str, str]) -> dict[str, Any]:
    """For each submission that got no answer at its first attempt: whether the server had
    created its run (its Idempotency-Key held or answered), and whether a retry with the same
    key named that one run (never a second)."""
    rows = await pool.fetch(
        "SELECT key, status, response FROM idempotency_keys WHERE key = ANY($1)", lost
    )
    keys = {row["key"]: row for row in rows}
    runs_per_key = {}
    for key in lost:
        row = keys.get(key)
        response = json.loads(row["response"]) if row and row["response"] else {}
        body = response.get("body") or {}
        runs_per_key[key] = response.get("created") or body.get("execution_id")
    return {
        "count": len(lost),
        "keys": lost[:20],
        "retried_and_answered": len(retried_ids),
        "retry_named_the_keys_run": sum(
            1 for key, run in retried_ids.items() if runs_per_key.get(key) == run
        ),
        "key_has_a_run": sum(1 for run in runs_per_key.values() if run),
    }


async def enqueue_directly(pool: Any, redis_url: str, agent_id: str, n: int) -> None:
    """`--submit enqueue`: write N queued runs as the server does (a row and its first event,
    one transaction) and enqueue their jobs in one pipeline, so the workers alone are measured
    (the server's submission path is `--submit api`)."""
    from pasar_core.executions.rq_queue import JOB_FUNCTION, JOB_TIMEOUT_S, RQ_QUEUE
    from redis import Redis
    from rq import Queue, Retry
    from rq.serializers import JSONSerializer

    agent = agent_id_uuid(agent_id)
    async with pool.acquire() as conn, conn.transaction():
        ids = [
            str(row["id"])
            for row in await conn.fetch(
                "INSERT INTO executions (id, agent_id, user_id, organisation_id, input, parameters,"
                " status, executor, cached, attempts, interruptions, heartbeat_at, last_seq, steps,"
                " created_at)"
                " SELECT gen_random_uuid(), a.id, a.owner_id, a.organisation_id, '\"go\"', '{}',"
                " 'queued', 'rq',"
                " false, 0, 0, now(), 1, '[]', now() FROM agents a, generate_series(1, $2)"
                " WHERE a.id = $1 RETURNING id",
                agent, n,
            )
        ]  # fmt: skip
        await conn.execute(
            "INSERT INTO execution_events (execution_id, seq, type, data, execution_created_at)"
            " SELECT id, 1, 'status', '{\"status\": \"queued\"}', created_at FROM executions"
            " WHERE agent_id = $1",
            agent,
        )

    def enqueue() -> None:
        queue = Queue(RQ_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer)
        jobs = [
            Queue.prepare_data(JOB_FUNCTION, (i,), job_id=i, timeout=JOB_TIMEOUT_S,
                               result_ttl=600, failure_ttl=86_400, retry=Retry(max=3))
            for i in ids
        ]  # fmt: skip
        for start in range(0, len(jobs), 500):
            queue.enqueue_many(jobs[start : start + 500])

    await asyncio.to_thread(enqueue)


def agent_id_uuid(agent_id: str) -> Any:
    import uuid

    return uuid.UUID(agent_id)


def start_pasar(
    args: argparse.Namespace,
    database_url: str,
    data_dir: Path,
    redis_url: str | None,
    serve_workers: int = 1,
) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]], str, Path]:
    extra = {"PASAR_INLINE_MAX_CONCURRENCY": str(args.max_concurrency)}
    if args.db_pool_size:
        extra["PASAR_DB_POOL_SIZE"] = str(args.db_pool_size)
    if redis_url:
        extra["REDIS_URL"] = redis_url
    env = common.server_env(database_url, data_dir, **extra)
    port = common.free_port()
    log = data_dir.parent / "server.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "pasar", "serve", "--port", str(port), "--log-level", "warning",
             "--workers", str(serve_workers)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return server, [], f"http://127.0.0.1:{port}", log


def start_workers(
    count: int, database_url: str, data_dir: Path, redis_url: str, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    env = common.server_env(database_url, data_dir, REDIS_URL=redis_url)
    workers = []
    for i in range(count):
        with open(data_dir.parent / f"worker{i}.log", "wb") as handle:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "pasar", "worker", "--concurrency", str(concurrency)],
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            )
    return workers


def wait_for_workers(redis_url: str, count: int, timeout_s: float = 120) -> None:
    """Until `count` workers registered with rq (they imported everything and listen)."""
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout_s
    while Worker.count(connection=redis) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not register with rq")
        time.sleep(0.2)


def log_findings(log: Path) -> dict[str, int]:
    """Counts of notable lines in the server log (tracebacks, pool timeouts)."""
    if not log.exists():
        return {}
    text = log.read_text(errors="replace")
    patterns = {
        "tracebacks": r"Traceback \(most recent call last\)",
        "pool_timeouts": r"QueuePool limit of size",
        "too_many_connections": r"too many clients|TooManyConnections",
        "crashed_inline_executions": r"inline execution .* crashed",
    }
    return {name: len(re.findall(pattern, text)) for name, pattern in patterns.items()}


def run_pasar(args: argparse.Namespace, serve_workers: int = 1) -> dict[str, Any]:
    import uvloop

    work_dir = common.temp_dir("pasar-bench-inflight-")
    data_dir = work_dir / "data"
    data_dir.mkdir()
    server = None
    workers: list[subprocess.Popen[bytes]] = []
    findings: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            database_url, pgdata = stack.enter_context(common.embedded_postgres())
            redis_url = (
                stack.enter_context(common.redis_server()) if args.executor == "rq" else None
            )
            pg_cpu_start = common.postgres_cpu_s(pgdata)
            server, _, base_url, log = start_pasar(
                args, database_url, data_dir, redis_url, serve_workers
            )
            try:
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(wait_healthy(base_url, server, log))
                    if redis_url:
                        workers = start_workers(
                            args.workers, database_url, data_dir, redis_url, args.worker_concurrency
                        )
                        wait_for_workers(redis_url, len(workers))  # before the clock starts
                    result = runner.run(
                        drive(args, base_url, database_url, server, workers, redis_url)
                    )
                result["postgres_cpu_s"] = round(common.postgres_cpu_s(pgdata) - pg_cpu_start, 1)
            finally:
                stopped = time.perf_counter()
                for worker in workers:
                    common.stop_process_tree(worker, 30)
                common.stop_process_tree(server, 120)
                findings["shutdown_s"] = round(time.perf_counter() - stopped, 1)
                findings |= log_findings(log)
                for i in range(len(workers)):
                    findings[f"worker{i}"] = log_findings(work_dir / f"worker{i}.log")
                if args.keep_logs:
                    kept = common.RESULTS_DIR / "logs"
                    kept.mkdir(parents=True, exist_ok=True)
                    for path in work_dir.glob("*.log"):
                        name = f"{run_name(args)}-s{serve_workers}-{path.name}"
                        shutil.copy(path, kept / name)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    result["log_findings"] = findings
    return result


def run_name(args: argparse.Namespace) -> str:
    if args.executor == "rq":
        suffix = "-enqueue" if args.submit == "enqueue" else ""
        return f"inflight-rq-w{args.workers}-n{args.n}{suffix}"
    wait = "-wait" if args.wait else ""
    serve = "-s" + "-".join(map(str, args.serve_workers)) if args.serve_workers != [1] else ""
    return f"inflight-inline-n{args.n}-c{args.max_concurrency}-d{args.delay_ms}{wait}{serve}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executor", choices=["inline", "rq"], default="inline")
    parser.add_argument("--n", type=int, default=1000, help="runs submitted at once")
    parser.add_argument("--workers", type=int, default=4, help="rq: pasar worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=500,
                        help="rq: runs at once per worker process (pasar worker --concurrency)")  # fmt: skip
    parser.add_argument("--submit", choices=["api", "enqueue"], default="api",
                        help="rq: submit through the API, or write the runs and enqueue their "
                        "jobs directly (measures the workers alone)")  # fmt: skip
    parser.add_argument("--delay-ms", type=int, default=1000, help="scripted model latency")
    parser.add_argument("--max-concurrency", type=int, default=2000,
                        help="inline: PASAR_INLINE_MAX_CONCURRENCY (server default 2000)")  # fmt: skip
    parser.add_argument("--db-pool-size", type=int, default=0,
                        help="PASAR_DB_POOL_SIZE for the server (0: its default, 10)")  # fmt: skip
    parser.add_argument("--submit-concurrency", type=int, default=64,
                        help="HTTP requests the driver keeps in flight while submitting")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300, help="give up after (s)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--wait", action="store_true",
                        help="submit with wait: true and report each request's latency to its answer")  # fmt: skip
    parser.add_argument("--no-idempotency", dest="idempotency", action="store_false",
                        help="submit without Idempotency-Key (a lost submission is not retried)")  # fmt: skip
    parser.add_argument("--retries", type=int, default=3,
                        help="retries of a submission that got no answer (same Idempotency-Key)")  # fmt: skip
    parser.add_argument("--serve-workers", type=int, nargs="+", default=[1],
                        help="pasar serve --workers, one pasar phase per value (e.g. 1 2)")  # fmt: skip
    parser.add_argument("--keep-logs", action="store_true", help="copy logs to bench/results")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.n <= 20_000:
        parser.error("--n must be 1..20000")
    if not 1 <= args.workers <= 32 or not 1 <= args.timeout <= 1800:
        parser.error("--workers must be 1..32 and --timeout 1..1800")
    if args.bare:
        bare_main(args.n, args.delay_ms)
        return

    baseline = None
    if not args.skip_baseline:
        print(f"baseline: {args.n} bare create_agent runs under asyncio.gather ...", flush=True)
        baseline = run_bare_baseline(args.n, args.delay_ms, args.timeout)
    by_serve_workers: dict[str, Any] = {}
    for serve_workers in args.serve_workers:
        print(f"pasar (serve --workers {serve_workers}): {args.n} runs on the {args.executor}"
              " executor ...", flush=True)  # fmt: skip
        loadavg_before = [round(x, 2) for x in os.getloadavg()]
        by_serve_workers[str(serve_workers)] = run_pasar(args, serve_workers) | {
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
    result = by_serve_workers[str(args.serve_workers[0])]
    ratio = None
    if baseline and result.get("completion_s") and baseline.get("completion_s"):
        ratio = round(result["completion_s"] / baseline["completion_s"], 2)
    capacity = (
        args.workers * args.worker_concurrency if args.executor == "rq" else args.max_concurrency
    )
    ideal_s = -(-args.n // capacity) * args.delay_ms / 1000
    data = {
        "executor": args.executor,
        "n": args.n,
        "delay_ms": args.delay_ms,
        "workers": args.workers if args.executor == "rq" else None,
        "worker_concurrency": args.worker_concurrency if args.executor == "rq" else None,
        "submit": args.submit,
        "inline_max_concurrency": args.max_concurrency if args.executor == "inline" else None,
        "db_pool_size": args.db_pool_size or "default (10 + 10 overflow)",
        "submit_concurrency": args.submit_concurrency,
        "in_flight_capacity": capacity,
        "ideal_completion_s": ideal_s,
        "pasar": result,
        "serve_workers": args.serve_workers,
        "pasar_by_serve_workers": by_serve_workers,
        "ratio_completion_by_serve_workers": {
            w: round(r["completion_s"] / baseline["completion_s"], 2)
            if baseline and r.get("completion_s") and baseline.get("completion_s")
            else None
            for w, r in by_serve_workers.items()
        },
        "bare_baseline": baseline,
        "ratio_completion_vs_bare": ratio,
        "machine": common.machine(),
    }
    path = common.write_results(run_name(args), data)
    for serve_workers, found in by_serve_workers.items():
        print(f"\n--- pasar serve --workers {serve_workers}")
        print_table(data | {"pasar": found,
                            "ratio_completion_vs_bare":
                                data["ratio_completion_by_serve_workers"][serve_workers]})  # fmt: skip
    print(f"\nresults: {path}")


def print_table(data: dict[str, Any]) -> None:
    pasar, bare = data["pasar"], data["bare_baseline"] or {}
    setting = (
        f"rq, {data['workers']} workers"
        if data["executor"] == "rq"
        else f"inline, max concurrency {data['inline_max_concurrency']}"
    )
    print(f"\nin-flight: N={data['n']}, model delay {data['delay_ms']} ms, {setting}")
    rows = [
        ["submission time (s)", pasar["submission_s"], "-"],
        ["completion time (s), first submit to last finish",
         pasar["completion_s"] or f"incomplete (last finish {pasar['last_finish_s']})",
         bare.get("completion_s", bare.get("error", "-"))],
        ["ideal completion (s) for this capacity", data["ideal_completion_s"], data["delay_ms"] / 1000],
        ["ratio pasar / bare", f"{data['ratio_completion_vs_bare']}x", "1.0x"],
        ["runs/s", pasar["runs_per_s"], bare.get("runs_per_s", "-")],
        ["peak runs in flight (queued+running) / running",
         f"{pasar['peak_in_flight']} / {pasar['peak_running']}", data["n"]],
        ["run latency p50 / p90 / p99 (s)",
         f"{pasar['run_latency_p50_s']} / {pasar['run_latency_p90_s']}"
         f" / {pasar['run_latency_p99_s']}", "-"],
        ["run latency p50 / p99 (s), bare: each ainvoke",
         "-", f"{bare.get('run_latency_p50_s', '-')} / {bare.get('run_latency_p99_s', '-')}"],
        ["peak RSS serving process tree (MiB)", pasar["server_peak_rss_mib"], bare.get("peak_rss_mib", "-")],
        ["peak DB connections (max_connections)",
         f"{pasar['peak_db_connections']} ({pasar['db_max_connections']})", "-"],
        ["CPU s: server / postgres",
         f"{pasar['cpu_s'].get('server')} / {pasar.get('postgres_cpu_s')}", bare.get("cpu_s", "-")],
        ["errors (not succeeded)", pasar["errors"], bare.get("errors", "-")],
        ["acknowledged / runs created", f"{pasar['acknowledged']} / {pasar['runs_created']}", "-"],
    ]  # fmt: skip
    if pasar.get("client_latency_p99_s") is not None:
        rows.insert(7, ["client latency, request to answer, p50 / p90 / p99 / max (s)",
                        f"{pasar['client_latency_p50_s']} / {pasar['client_latency_p90_s']} / "
                        f"{pasar['client_latency_p99_s']} / {pasar['client_latency_max_s']}", "-"])  # fmt: skip
    if data["executor"] == "rq":
        rows.insert(7, ["peak RSS per worker tree (MiB)", pasar["worker_peak_rss_mib"], "-"])
        rows.insert(8, ["peak RSS work horse (MiB)", pasar["work_horse_peak_rss_mib"], "-"])
    print(common.table(["metric", "pasar", "bare create_agent"], rows))
    if pasar["error_samples"]:
        print("errors:", json.dumps(pasar["error_samples"], indent=1))
    if pasar["http_errors"]:
        print("HTTP errors:", pasar["http_errors"])
    if pasar["lost_submissions"]:
        print("lost submissions:", json.dumps(pasar["lost_submissions"]))


if __name__ == "__main__":
    main()
