"""Latency of one sandboxed custom-tool call, warm and cold, against bare Docker baselines.

Everything runs against one Docker daemon (one that answers, else a private `dockerd` this script
starts in a temporary directory under /tmp and stops), the python sandbox image
(`sandbox_images/python`, built if missing) and one trivial tool (`return {"n": n + 1}`). Each
iteration runs every variant of its group in a rotating order:

warm group
- `jsonl`: a JSON-lines round trip to a long-lived container (the same image, hardening and
  runner, started once): write one `call` line to the attached socket, read the reply line;
- `warm`: `SandboxClient.call_python` served by a warm container (pool, caps, reply parsing);
- `exec`: `docker exec -i` (the CLI) of the runner in that long-lived container, piping the
  `load` and `call` lines;
- `path_warm`: the whole path (`_sandbox_path.py`): `Registry.invoke` (input and output
  validated) -> the RQ `sandbox` queue on a real Redis -> a sandbox worker -> a warm container;

cold group
- `run`: `docker run --rm -i` (the CLI) of the image with the same hardening flags, piping the
  `load` and `call` lines;
- `cold`: `SandboxClient.call_python` with no warm container for the tool: create, check the
  policy (`docker inspect`), attach, start, load, call. The container it leaves warm is removed
  after the sample, outside the timing;
- `path_cold`: the whole path with no warm container (a new tool version each sample).

    uv run python bench/sandbox_latency.py [--warm 300] [--cold 20] [--warmup 5]

`warm` and `cold` measure the sandbox client alone; `path_*` add what a real call adds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from _sandbox_path import WholePath
from pasar_core.sandbox.client import SandboxClient
from pasar_core.sandbox.limits import SandboxLimits
from pasar_core.sandbox.policy import ContainerPolicy
from pasar_core.sandbox.settings import SandboxSettings
from pasar_core.sandbox.testing import docker_for_tests
from pasar_core.sandbox.workloads import PythonTool

SOURCE = "def run(args):\n    return {'n': args['n'] + 1}\n"
LIMITS = SandboxLimits()
RUNNER = ["/usr/bin/python3.11", "-I", "-S", "-B", "/opt/pasar/runner.py"]
BENCH_LABEL = "pasar.bench"


def docker_run_flags(image: str) -> list[str]:
    """`docker run` flags for the hardening ContainerPolicy applies."""
    mb = f"{LIMITS.memory_mb}m"
    return [
        "run", "--rm", "-i", "--network", "none", "--dns", "127.0.0.1", "--read-only",
        "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--pids-limit", str(LIMITS.pids), "--memory", mb, "--memory-swap", mb,
        "--cpus", str(LIMITS.cpus), "--ipc", "none", "--init", "--log-driver", "none",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,noexec,size={LIMITS.tmpfs_mb}m,mode=1777",
        "--ulimit", "core=0", "--ulimit", "nofile=256", "--label", f"{BENCH_LABEL}=1", image,
    ]  # fmt: skip


def lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def load_and_call(n: int) -> bytes:
    tool = PythonTool("bench:inc", 1, SOURCE)
    return lines({"id": 1, **tool.load_request(LIMITS)}, {"id": 2, "op": "call", "args": {"n": n}})


def check_cli_reply(output: bytes, n: int) -> None:
    reply = json.loads(output.splitlines()[-1])
    assert reply["result"] == {"n": n + 1}, output


class LongLived:
    """A container of the same image and hardening, attached once: the JSON-lines baseline."""

    def __init__(self, client: Any, image: str) -> None:
        api = client.api
        policy = ContainerPolicy(image=image, limits=LIMITS, labels={BENCH_LABEL: "1"})
        self.api = api
        self.id = api.create_container(**policy.create_arguments(api))["Id"]
        self.attached = api.attach_socket(
            self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        self.sock: socket.socket = self.attached._sock
        api.start(self.id)
        self.buffer = b""
        tool = PythonTool("bench:inc", 1, SOURCE)
        self.round_trip({"id": 0, **tool.load_request(LIMITS)})

    def round_trip(self, message: dict[str, Any]) -> dict[str, Any]:
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        payload = b""
        while b"\n" not in payload:
            while len(self.buffer) < 8 or len(self.buffer) < 8 + int.from_bytes(self.buffer[4:8]):
                self.buffer += self.sock.recv(65536)
            size = int.from_bytes(self.buffer[4:8])
            frame, self.buffer = self.buffer[8 : 8 + size], self.buffer[8 + size :]
            payload += frame
        reply: dict[str, Any] = json.loads(payload)
        return reply

    def close(self) -> None:
        self.sock.close()
        self.attached.close()
        self.api.remove_container(self.id, force=True)


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    cli = shutil.which("docker")
    if cli is None:
        raise SystemExit("the docker CLI is missing (Debian: apt-get install -y docker.io)")
    import docker

    with docker_for_tests(common.TMP_ROOT) as daemon:
        env = {**os.environ, "DOCKER_HOST": daemon.docker_host}
        client = docker.DockerClient(base_url=daemon.docker_host, timeout=120)
        worker = f"pasar-bench-{uuid.uuid4().hex[:8]}"
        settings = SandboxSettings(
            docker_host=daemon.docker_host, worker_name=worker, max_containers=4, idle_s=300
        )
        warm_client = SandboxClient(settings, image=daemon.image).start(janitor=False)
        cold_client = SandboxClient(
            SandboxSettings(docker_host=daemon.docker_host, worker_name=worker, idle_s=0),
            image=daemon.image,
        ).start(janitor=False)
        long_lived = LongLived(client, daemon.image)
        tool = PythonTool("bench:inc", 1, SOURCE)
        all_variants = ("jsonl", "warm", "exec", "path_warm", "run", "cold", "path_cold")
        samples: dict[str, list[float]] = {k: [] for k in all_variants}
        path = WholePath(
            SandboxSettings(docker_host=daemon.docker_host, worker_name=worker, idle_s=300),
            daemon.image,
            SOURCE,
        )
        counter = iter(range(10**9))

        def jsonl() -> None:
            n = next(counter)
            reply = long_lived.round_trip({"id": n + 1, "op": "call", "args": {"n": n}})
            assert reply["result"] == {"n": n + 1}

        def warm() -> None:
            n = next(counter)
            assert warm_client.call_python(tool, {"n": n}).value == {"n": n + 1}

        def cli_call(command: list[str]) -> None:
            n = next(counter)
            output = subprocess.run(
                [cli, *command], input=load_and_call(n), capture_output=True, env=env, check=True
            ).stdout
            check_cli_reply(output, n)

        def exec_() -> None:
            cli_call(["exec", "-i", long_lived.id, *RUNNER])

        def run_() -> None:
            cli_call(docker_run_flags(daemon.image))

        def cold() -> None:
            n = next(counter)
            fresh = PythonTool("bench:inc", n + 2, SOURCE)  # a version no container serves yet
            result = cold_client.call_python(fresh, {"n": n})
            assert result.cold
            assert result.value == {"n": n + 1}

        def path_warm() -> None:
            n = next(counter)
            assert path.call(n) == {"n": n + 1}

        def path_cold() -> None:
            n = next(counter)
            assert path.call(n, version=n + 2) == {"n": n + 1}

        groups = [
            ({"jsonl": jsonl, "warm": warm, "exec": exec_, "path_warm": path_warm}, args.warm),
            ({"run": run_, "cold": cold, "path_cold": path_cold}, args.cold),
        ]
        try:
            for variants, iterations in groups:
                names = list(variants)
                for i in range(args.warmup + iterations):
                    order = names[i % len(names) :] + names[: i % len(names)]
                    for name in order:
                        seconds = timed(variants[name])
                        if name == "cold":
                            cold_client.sweep()  # remove the container it left warm, untimed
                        if name == "path_cold":
                            path.sweep()
                        if i >= args.warmup:
                            samples[name].append(seconds)
        finally:
            path.close()
            long_lived.close()
            warm_client.close()
            cold_client.close()
            client.close()
        return {
            "daemon": {"started_here": daemon.started_here, "image": daemon.image},
            "limits": {"memory_mb": LIMITS.memory_mb, "cpus": LIMITS.cpus, "pids": LIMITS.pids},
            "variants": {name: common.summary_ms(values) for name, values in samples.items()},
        }


def report(results: dict[str, Any]) -> str:
    v = results["variants"]
    med = {name: stats["median_ms"] for name, stats in v.items()}
    p90 = {name: stats["p90_ms"] for name, stats in v.items()}
    rows = [
        ["JSON-lines round trip, long-lived container", "jsonl"],
        ["pasar warm call (sandbox client)", "warm"],
        ["pasar warm call, whole path (registry, queue, worker)", "path_warm"],
        ["bare `docker exec -i` of the runner", "exec"],
        ["pasar cold call (sandbox client)", "cold"],
        ["pasar cold call, whole path", "path_cold"],
        ["bare `docker run --rm -i`", "run"],
    ]
    body = [[label, v[name]["n"], med[name], p90[name]] for label, name in rows]
    lines_ = [
        common.table(["variant", "n", "median ms", "p90 ms"], body),
        "",
        f"- warm - JSON-lines round trip (median): {med['warm'] - med['jsonl']:.2f} ms "
        "(target: within 5 ms)",
        f"- warm / docker exec (median): {med['warm'] / med['exec']:.4f}x",
        f"- cold / docker run --rm (median): {med['cold'] / med['run']:.2f}x "
        f"(p90 {p90['cold'] / p90['run']:.2f}x; target: under 1.5x)",
        f"- cold / docker exec (median): {med['cold'] / med['exec']:.2f}x",
        f"- whole path warm - JSON-lines round trip (median): "
        f"{med['path_warm'] - med['jsonl']:.2f} ms (target: within 5 ms)",
        f"- whole path warm / docker exec (median): {med['path_warm'] / med['exec']:.4f}x",
        f"- whole path cold / docker run --rm (median): {med['path_cold'] / med['run']:.2f}x "
        "(target: under 1.5x)",
    ]
    return "\n".join(lines_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warm", type=int, default=300, help="iterations of the warm group")
    parser.add_argument("--cold", type=int, default=20, help="iterations of the cold group")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    machine = common.machine()
    results = run(args)
    results["machine"] = machine
    results["arguments"] = vars(args)
    text = report(results)
    results["report"] = text
    path = common.write_results("sandbox_latency", results)
    print(text)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
