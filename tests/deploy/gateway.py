"""A small pasar deployment on this machine: Debian's nginx (with deploy/nginx's rules) in front of
`pasar serve` processes, and `pasar worker` processes, sharing one PostgreSQL and one Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.deploy.tools import NGINX_DIR, required, write_certificate
from tests.support.processes import Processes

ACCESS_LINE = re.compile(r'upstream="(?P<upstream>[^"]*)" .* request_id=(?P<request_id>\w+)')
WAIT_S = 240  # a bound on start-ups on a loaded machine, not a measure of speed


def wait_until(condition: object, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@dataclass
class Api:
    """One `pasar serve` process (one granian worker) on 127.0.0.1:port."""

    port: int
    process: subprocess.Popen[bytes] | None = None
    generation: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ready(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"pasar serve on {self.port} exited"
        try:
            return httpx.get(f"http://{self.address}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False


@dataclass
class Deployment:
    processes: Processes
    environment: Mapping[str, str]
    directory: Path
    apis: list[Api] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gateway_port: int = 0
    tls_port: int = 0
    certificate: Path | None = None
    gateway: subprocess.Popen[bytes] | None = None

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def start_api(self, api: Api) -> None:
        api.generation += 1
        output = self.log(f"api-{api.port}-{api.generation}").open("wb")
        api.process = self.processes.start(
            [sys.executable, "-m", "pasar", "serve", "--workers", "1", "--log-level", "warning"],
            env={**self.environment, "PASAR_PORT": str(api.port)},
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output.close()

    def start_worker(self) -> subprocess.Popen[bytes]:
        output = self.log(f"worker-{len(self.workers)}").open("wb")
        worker = self.processes.start(
            [sys.executable, "-m", "pasar", "worker", "--concurrency", "2"],
            env=dict(self.environment), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output.close()
        self.workers.append(worker)
        return worker

    def write_gateway_config(self) -> Path:
        """deploy/nginx's shared parts (logs, limits, TLS, proxy rules) with this machine's
        upstreams, ports and paths."""
        certificate, key = write_certificate(self.directory / "tls")
        self.certificate = certificate
        servers = "\n".join(
            f"        server {api.address} max_fails=3 fail_timeout=5s;" for api in self.apis
        )
        temp = self.directory / "nginx-temp"
        temp.mkdir(exist_ok=True)
        config = self.directory / "nginx.conf"
        config.write_text(f"""
worker_processes 1;
error_log {self.log("nginx-error")} warn;
pid {self.directory / "nginx.pid"};
events {{ worker_connections 1024; }}
http {{
    include {NGINX_DIR / "pasar" / "http.conf"};
    include {NGINX_DIR / "pasar" / "limits.conf"};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream pasar_api {{
        zone pasar_api 64k;
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.gateway_port};
        return 308 https://$host:{self.tls_port}$request_uri;
    }}
    server {{
        listen 127.0.0.1:{self.tls_port} ssl http2;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        include {NGINX_DIR / "pasar" / "tls.conf"};
        include {NGINX_DIR / "pasar" / "proxy.conf"};
    }}
}}
""")
        return config

    def start_gateway(self) -> subprocess.Popen[bytes]:
        nginx = required("nginx")
        config = self.write_gateway_config()
        checked = subprocess.run(
            [nginx, "-t", "-e", "stderr", "-c", str(config)], capture_output=True, timeout=60
        )
        assert checked.returncode == 0, checked.stderr.decode()
        access = self.log("nginx-access").open("wb")
        process = self.processes.start(
            [nginx, "-e", "stderr", "-c", str(config), "-g", "daemon off;"],
            env=dict(os.environ), stdout=access, stderr=subprocess.STDOUT,
        )  # fmt: skip
        access.close()
        self.gateway = process
        return process

    def upstreams_by_request_id(self) -> dict[str, str]:
        """Request id -> the upstream address(es) nginx tried, from its access log."""
        found = {}
        for line in self.log("nginx-access").read_text().splitlines():
            match = ACCESS_LINE.search(line)
            if match:
                found[match["request_id"]] = match["upstream"]
        return found
