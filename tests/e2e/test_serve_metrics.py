"""`pasar serve --workers 2`: /metrics reports every worker's requests, whichever one answers
(prometheus-client's multiprocess mode, in `<data dir>/metrics`)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_serve import data_dir, serve, stop, wait_until_ready
from tests.support.processes import Processes
from tests.support.servers import free_port

__all__ = ["data_dir"]  # the fixture, used by name
REQUESTS = 40


def healthz_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "pasar_http_requests_total" and sample.labels["route"] == "/healthz"
    )


def test_metrics_sum_the_workers(data_dir: Path, processes_started: Processes) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve(processes_started, data_dir, port, "--workers", "2")
    try:
        wait_until_ready(base, process)
        for _ in range(REQUESTS):  # a new connection each: the workers share the listener
            assert httpx.get(f"{base}/healthz").status_code == 200
        counts = {healthz_count(httpx.get(f"{base}/metrics").text) for _ in range(8)}
        files = list((data_dir / "metrics").glob("*.db"))
    finally:
        stderr = stop(process)
    assert counts == {REQUESTS}, counts
    pids = {re.sub(r"^\D*_", "", path.stem) for path in files}
    assert len(pids) >= 2, files  # both workers wrote their series there
    assert "Traceback" not in stderr
