"""The worker's Prometheus endpoint (FIREWATCH_WORKER_METRICS_ADDRESS), scraped over HTTP.

A real worker process (``python worker.py``) against the session's dev server, with its
metrics bound to a free loopback port. A P1 incident opens (workflow tasks, local
activities: without real channels its page goes to the outbox locally) and a monthly report
runs (one regular activity); then the endpoint must show the series an autoscaler reads,
for this worker's task queue, with samples.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from domain.incident import IncidentState
from starter.incidents import open_or_join
from starter.worker_metrics import (
    ACTIVITY_SCHEDULE_TO_START,
    SLOTS_AVAILABLE,
    SLOTS_USED,
    WORKFLOW_SCHEDULE_TO_START,
    MetricsEndpointError,
    metrics_runtime,
)
from tests.conftest import DEFAULT_POLICY_PATH, ROOT
from tests.dev.support import free_port, log_tail, wait_for, wait_polling, worker_env
from tests.dev.support import worker_process as worker_proc
from tests.workflows.helpers import make_alert
from workflows.incident import IncidentWorkflow
from workflows.monthly_report import MonthlyReportWorkflow

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=5).text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def health_check(address: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_")}
    env["FIREWATCH_WORKER_METRICS_ADDRESS"] = address
    return subprocess.run(
        [sys.executable, "-m", "starter.worker_metrics", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def for_queue(samples: Samples, name: str, queue: str) -> list[tuple[dict[str, str], float]]:
    # The pages and runbooks workers poll "<queue>-pages" / "<queue>-runbooks".
    return [
        (labels, v)
        for labels, v in samples.get(name, [])
        if labels.get("task_queue", "").startswith(queue)
    ]


async def test_worker_serves_autoscaling_metrics(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_env.client
    queue = f"fw-metrics-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = worker_env(
        client.service_client.config.target_host, tmp_path / "data", DEFAULT_POLICY_PATH, queue
    )
    env["FIREWATCH_WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{port}"
    proc = worker_proc(env, tmp_path / "worker.log").start()
    url = f"http://127.0.0.1:{port}/metrics"
    handle = None
    try:
        await wait_polling(client, queue, proc)
        handle = await open_or_join(client, make_alert("P1"), task_queue=queue)
        opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
        assert opened.incident_id is not None
        report = await client.execute_workflow(
            MonthlyReportWorkflow.run, id=f"report-{queue}", task_queue=queue
        )
        assert report is not None

        async def paged_and_recorded() -> Samples | None:
            samples = scrape(url)
            counts = {
                name: sum(v for _, v in for_queue(samples, f"{name}_count", queue))
                for name in (WORKFLOW_SCHEDULE_TO_START, ACTIVITY_SCHEDULE_TO_START)
            }
            return samples if all(counts.values()) else None

        samples = await wait_for(paged_and_recorded, timeout=30, what="schedule-to-start samples")
        # The container health check: this process serves its metrics and polls.
        healthy = health_check(f"0.0.0.0:{port}")
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout.strip() == f"{url}: polling"
    finally:
        if handle is not None:
            await handle.terminate("metrics test done")
        rc = proc.terminate()
    assert rc == 0, log_tail(proc.log)
    gone = health_check(f"0.0.0.0:{port}")
    assert gone.returncode == 1 and url in gone.stderr

    for name in (WORKFLOW_SCHEDULE_TO_START, ACTIVITY_SCHEDULE_TO_START):
        buckets = for_queue(samples, f"{name}_bucket", queue)
        assert buckets, f"no {name}_bucket series for {queue}"
        assert max(v for _, v in buckets) > 0  # the +Inf bucket holds every observation
        assert sum(v for _, v in for_queue(samples, f"{name}_count", queue)) > 0
    available = for_queue(samples, SLOTS_AVAILABLE, queue)
    kinds = {labels["worker_type"] for labels, _ in available}
    assert {"WorkflowWorker", "ActivityWorker"} <= kinds, kinds
    assert all(v > 0 for _, v in available), available  # idle again: free slots left
    assert for_queue(samples, SLOTS_USED, queue), f"no {SLOTS_USED} series"
    # The log names the endpoint; the worker says where Temporal is without secrets.
    log = proc.log.read_text()
    assert f"Temporal metrics on http://127.0.0.1:{port}/metrics" in log


def test_a_taken_port_is_a_named_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(
            MetricsEndpointError, match=f"FIREWATCH_WORKER_METRICS_ADDRESS={address}"
        ):
            metrics_runtime(address)
    with pytest.raises(MetricsEndpointError, match="FIREWATCH_WORKER_METRICS_ADDRESS=nonsense"):
        metrics_runtime("nonsense")


def test_worker_refuses_to_start_without_its_endpoint(tmp_path: Path) -> None:
    env = worker_env("127.0.0.1:1", tmp_path / "data", DEFAULT_POLICY_PATH, "unused")
    env["FIREWATCH_WORKER_METRICS_ADDRESS"] = "not-an-address"
    done = subprocess.run(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "FIREWATCH_WORKER_METRICS_ADDRESS=not-an-address" in done.stderr


def test_health_check_without_the_setting() -> None:
    done = health_check("")
    assert done.returncode == 2
    assert "FIREWATCH_WORKER_METRICS_ADDRESS is not set" in done.stderr
