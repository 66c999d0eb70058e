"""The worker's Prometheus endpoint: the Temporal SDK's own metrics, for autoscaling.

With ``FIREWATCH_WORKER_METRICS_ADDRESS`` set (``host:port``), the worker connects to
Temporal through a :class:`temporalio.runtime.Runtime` whose telemetry serves Prometheus
text on ``http://host:port/metrics``. Everything on it comes from the SDK core, per task
queue and worker: the task slots (``temporal_worker_task_slots_available`` /
``temporal_worker_task_slots_used``, by ``worker_type``), how long tasks waited for a
worker (``temporal_workflow_task_schedule_to_start_latency``,
``temporal_activity_schedule_to_start_latency``, histograms), pollers, sticky cache and
failures. Durations are in seconds (Prometheus' convention), not the SDK's default
milliseconds. README "Worker metrics" says which ones to scale on.

``python -m starter.worker_metrics check`` is the worker container's health check: exit 0
while this process serves the endpoint and has pollers on Temporal.
"""

from __future__ import annotations

import argparse
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.settings import get_settings

# The series an autoscaler watches (asserted by tests/deploy/test_worker_metrics.py).
SLOTS_AVAILABLE = "temporal_worker_task_slots_available"
SLOTS_USED = "temporal_worker_task_slots_used"
WORKFLOW_SCHEDULE_TO_START = "temporal_workflow_task_schedule_to_start_latency"
ACTIVITY_SCHEDULE_TO_START = "temporal_activity_schedule_to_start_latency"


class MetricsEndpointError(ValueError):
    """The metrics endpoint cannot be served (bad address, port in use); names the setting."""


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime that serves Prometheus metrics on ``address`` (``host:port``).

    Raises :class:`MetricsEndpointError` at once when the address is malformed or taken, so
    a worker never runs without the endpoint its autoscaler expects.
    """
    config = PrometheusConfig(bind_address=address, durations_as_seconds=True)
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as exc:
        raise MetricsEndpointError(f"FIREWATCH_WORKER_METRICS_ADDRESS={address}: {exc}") from None


POLLERS = "temporal_num_pollers"


def local_url(address: str) -> str:
    """The endpoint's URL from inside the worker's own container or host."""
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/metrics"


def polling(metrics_text: str) -> bool:
    """True when this worker process has a poller waiting on Temporal (any task queue)."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == POLLERS and sample.value > 0:
                return True
    return False


def check(address: str | None, timeout: float = 3.0) -> tuple[int, str]:
    """Exit status and one line for a container health check: 0 while this process serves
    its metrics and polls Temporal. Each replica answers for itself (unlike
    ``starter.temporal_setup check-worker``, which any replica's pollers satisfy)."""
    if not address:
        return 2, "FIREWATCH_WORKER_METRICS_ADDRESS is not set"
    url = local_url(address)
    try:
        text = httpx.get(url, timeout=timeout).text
    except httpx.HTTPError as exc:
        return 1, f"{url}: {exc.__class__.__name__}: {exc}"
    if not polling(text):
        return 1, f"{url}: no poller on Temporal yet"
    return 0, f"{url}: polling"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m starter.worker_metrics",
        description="check: exit 0 while this worker serves its metrics and polls Temporal",
    )
    parser.add_argument("command", choices=["check"])
    parser.parse_args(argv)
    status, line = check(get_settings().worker_metrics_address)
    print(line, file=sys.stdout if status == 0 else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
