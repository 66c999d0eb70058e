"""The ``prometheus`` check against Debian's ``prometheus`` scraping a small local exporter.

One Prometheus for the module: started on a free loopback port with a temporary config that
scrapes :class:`Exporter` every second; the tests wait until the query answers with data.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.runbooks import RunbookActivities, RunCheck
from activities.runbooks.checks import run_prometheus
from activities.settings import RunbookSettings
from domain.runbooks import Outcome, PrometheusCheck
from storage.store import Store
from tests.channels.fake_http import free_port
from tests.runbooks.servers import Exporter

PROMETHEUS = shutil.which("prometheus")

CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""

SERIES = {
    'fw_error_ratio{service="api"}': 0.12,
    'fw_error_ratio{service="web"}': 0.01,
    'fw_p99_seconds{service="api"}': 0.4,
    "fw_queue_depth": 7,
}


@dataclass
class Prometheus:
    url: str
    target: str  # the exporter's instance label


def _query(url: str, query: str) -> list[object]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=2)
    data = answer.json().get("data") or {}
    return list(data.get("result") or [])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed: run `make test-deps`")
    work: Path = tmp_path_factory.mktemp("prometheus")
    with Exporter() as exporter:
        assert isinstance(exporter, Exporter)
        exporter.values.update(SERIES)
        (work / "prometheus.yml").write_text(CONFIG.format(port=exporter.port))
        port = free_port()
        log = (work / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if len(_query(url, "fw_error_ratio")) == 2 and _query(url, "fw_queue_depth"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if proc.poll() is not None:
                    raise RuntimeError((work / "prometheus.log").read_text())
                if time.monotonic() > deadline:
                    raise RuntimeError("prometheus scraped no data within 30s")
                time.sleep(0.2)
            yield Prometheus(url, f"127.0.0.1:{exporter.port}")
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()


def promql(query: str, **fields: object) -> PrometheusCheck:
    return PrometheusCheck.model_validate({"name": "errors", "query": query, **fields})


async def test_above_threshold_fails(prometheus: Prometheus) -> None:
    check = promql('fw_error_ratio{service="api"}', above=0.05)
    result = await run_prometheus(check, prometheus.url)
    assert (result.outcome, result.summary) == (Outcome.FAILED, "0.12 > 0.05")
    labels = f'instance="{prometheus.target}", job="exporter", service="api"'
    assert result.value == f"fw_error_ratio{{{labels}}} 0.12"
    assert result.latency_ms is not None


async def test_within_threshold_is_ok(prometheus: Prometheus) -> None:
    web = await run_prometheus(promql('fw_error_ratio{service="web"}', above=0.05), prometheus.url)
    assert (web.outcome, web.summary) == (Outcome.OK, "ok 0.01")
    p99 = await run_prometheus(
        promql("max(fw_p99_seconds)", above=1.0, unit="s"), prometheus.url + "/"
    )
    assert (p99.outcome, p99.summary, p99.value) == (Outcome.OK, "ok 0.4s", "{} 0.4s")


async def test_each_series_is_compared(prometheus: Prometheus) -> None:
    result = await run_prometheus(promql("fw_error_ratio", above=0.05), prometheus.url)
    assert (result.outcome, result.summary) == (Outcome.FAILED, "0.12 > 0.05 (1 of 2 series)")
    assert result.value is not None
    lines = result.value.splitlines()
    assert len(lines) == 2 and 'service="api"' in lines[0] + lines[1]


async def test_below_threshold(prometheus: Prometheus) -> None:
    up = await run_prometheus(promql('up{job="exporter"}', below=1), prometheus.url)
    assert (up.outcome, up.summary) == (Outcome.OK, "ok 1")
    low = await run_prometheus(promql("sum(fw_queue_depth)", below=10), prometheus.url)
    assert (low.outcome, low.summary) == (Outcome.FAILED, "7 < 10")
    both = await run_prometheus(promql("sum(fw_queue_depth)", above=5, below=1), prometheus.url)
    assert (both.outcome, both.summary) == (Outcome.FAILED, "7 > 5")


async def test_scalar_results(prometheus: Prometheus) -> None:
    check = promql("scalar(sum(fw_queue_depth)) * 2", above=20)
    result = await run_prometheus(check, prometheus.url)
    assert (result.outcome, result.summary, result.value) == (Outcome.OK, "ok 14", "scalar 14")


async def test_no_data_and_bad_queries(prometheus: Prometheus) -> None:
    empty = await run_prometheus(promql("fw_no_such_metric", above=1), prometheus.url)
    assert (empty.outcome, empty.summary) == (Outcome.ERROR, "no data")
    bad = await run_prometheus(promql("sum(", above=1), prometheus.url)
    assert bad.outcome == Outcome.ERROR
    assert bad.summary.startswith("query error: "), bad.summary
    matrix = await run_prometheus(promql("fw_queue_depth[1m]", above=1), prometheus.url)
    assert matrix.outcome == Outcome.ERROR
    assert "use an instant query" in matrix.summary


async def test_no_prometheus() -> None:
    none = await run_prometheus(promql("up", below=1), None)
    assert (none.outcome, none.summary) == (Outcome.ERROR, "no Prometheus configured")
    closed = free_port()
    gone = await run_prometheus(promql("up", below=1), f"http://127.0.0.1:{closed}")
    assert (gone.outcome, gone.summary) == (Outcome.ERROR, f"unreachable: 127.0.0.1:{closed}")


async def test_prometheus_url_comes_from_the_settings(prometheus: Prometheus, store: Store) -> None:
    acts = RunbookActivities(store, RunbookSettings(prometheus_url=prometheus.url))
    inp = RunCheck(incident_id="INC-1", service="api", check=promql("fw_queue_depth", above=5))
    result = await ActivityEnvironment().run(acts.run_check, inp)
    assert (result.kind, result.outcome, result.summary) == ("prometheus", Outcome.FAILED, "7 > 5")
