"""`python -m pasar.worker_health`: exit 0 while a worker process of this host is registered in
rq (rq keeps a worker's key only as long as its heartbeats renew it), 1 otherwise.

The container HEALTHCHECK and Kubernetes liveness probe of `pasar worker` (executions or
sandbox queue), which serves no HTTP. It imports only redis and rq, so it is cheap to run every
few seconds. The Redis is `REDIS_URL` (else `PASAR_SANDBOX_REDIS_URL`); `--pid` narrows the
check to one process (a container's main process is pid 1, which `--pid 1` names).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping, Sequence


def registered_workers(redis_url: str, hostname: str, pid: int | None = None) -> list[str]:
    """Names of the rq workers registered from `hostname` (and `pid`, when given)."""
    from redis import Redis
    from rq import Worker

    with Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5) as redis:
        return [
            str(worker.name)
            for worker in Worker.all(connection=redis)
            if worker.hostname == hostname and (pid is None or worker.pid == pid)
        ]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m pasar.worker_health", description=__doc__)
    parser.add_argument("--pid", type=int, default=None, help="only this worker process")
    args = parser.parse_args(argv)
    redis_url = env.get("REDIS_URL") or env.get("PASAR_SANDBOX_REDIS_URL")
    if not redis_url:
        print("worker health: set REDIS_URL (or PASAR_SANDBOX_REDIS_URL)", file=sys.stderr)
        return 1
    hostname = socket.gethostname()
    try:
        names = registered_workers(redis_url, hostname, args.pid)
    except Exception as error:  # Redis down or refusing: unhealthy, said in one line
        print(f"worker health: Redis unreachable ({type(error).__name__})", file=sys.stderr)
        return 1
    if not names:
        which = f"pid {args.pid} on {hostname}" if args.pid is not None else hostname
        print(f"worker health: no rq worker of {which} is registered", file=sys.stderr)
        return 1
    print(f"worker health: {', '.join(sorted(names))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
