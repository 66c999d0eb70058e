"""A real Prometheus Alertmanager, on loopback, delivering to the API's webhook.

Alerts are fired with amtool and Alertmanager's API; Alertmanager groups them by
alertname and re-sends the whole group whenever it changes, which is exactly the repeat
traffic the API must absorb without opening a second incident or paging again.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from domain.ids import incident_workflow_id
from domain.incident import IncidentState, Status
from tests.api.api_support import ApiEnv, eventually, free_port, metric, unique

AM_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")

CONFIG = """
global: {{resolve_timeout: 1h}}
route:
  receiver: fw
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['team="batch"']
      receiver: fw-manual
receivers:
  - name: fw
    webhook_configs:
      - url: {api}/alerts/alertmanager
        send_resolved: true
        http_config: {{authorization: {{type: Bearer, credentials: {token}}}}}
  - name: fw-manual
    webhook_configs:
      - url: {api}/alerts/alertmanager
        send_resolved: true
        http_config: {{authorization: {{type: Bearer, credentials: {manual_token}}}}}
"""


@dataclass
class Alertmanager:
    url: str

    def amtool_add(self, *labels: str, summary: str) -> None:
        assert AMTOOL is not None
        now = datetime.now(UTC)
        start = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        # Without --start, Alertmanager would take the end time as the start time.
        end = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        subprocess.run(
            [
                AMTOOL,
                f"--alertmanager.url={self.url}",
                "alert",
                "add",
                *labels,
                f"--annotation=summary={summary}",
                "--generator-url=http://prometheus.example/graph?g0.expr=up",
                f"--start={start}",
                f"--end={end}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    async def post(self, *alerts: dict[str, object]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(f"{self.url}/api/v2/alerts", json=list(alerts))
            response.raise_for_status()

    async def fingerprints(self, alertname: str) -> dict[str, str]:
        """instance label → fingerprint, as Alertmanager computed it."""
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(
                f"{self.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}
            )
            response.raise_for_status()
        return {a["labels"].get("instance", ""): a["fingerprint"] for a in response.json()}


@pytest.fixture(scope="module")
def alertmanager(
    api_env: ApiEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Alertmanager]:
    if AM_BIN is None or AMTOOL is None:
        pytest.fail("prometheus-alertmanager and amtool are not installed: run `make test-deps`")
    work: Path = tmp_path_factory.mktemp("alertmanager")
    config = work / "am.yml"
    config.write_text(
        CONFIG.format(
            api=api_env.url,
            token=api_env.stack.key("alertmanager"),
            manual_token=api_env.stack.key("am-manual"),
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            AM_BIN,
            f"--config.file={config}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "am.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError((work / "am.log").read_text())
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            raise RuntimeError("alertmanager did not become ready")
        yield Alertmanager(url)
    finally:
        proc.terminate()
        proc.wait(10)


def am_alert(
    alertname: str, instance: str, *, resolved: bool = False, **labels: str
) -> dict[str, object]:
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)
    return {
        "labels": {"alertname": alertname, "instance": instance, **labels},
        "annotations": {"summary": f"{alertname} on {instance}"},
        "endsAt": ends.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus.example/graph",
    }


async def incident(api_env: ApiEnv, workflow_id: str, **expect: object) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id) if await api_env.runs(workflow_id) else None
        if state is None or state.incident_id is None:
            return None
        return state if all(getattr(state, k) == v for k, v in expect.items()) else None

    return await eventually(probe, timeout=30)


@pytest.fixture
async def http_api(api_env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_env.url, timeout=10) as client:
        yield client


async def test_grouped_alerts_open_one_incident_each_and_resolve(
    api_env: ApiEnv, alertmanager: Alertmanager
) -> None:
    name = unique("FwHighLatency")
    labels = ("service=checkout", "severity=critical", "team=web")
    await asyncio.to_thread(
        alertmanager.amtool_add, name, "instance=a", *labels, summary="p99 latency 6 s on a"
    )
    fp_a = (await eventually(lambda: alertmanager.fingerprints(name)))["a"]
    wid_a = incident_workflow_id(fp_a, "alertmanager")
    state_a = await incident(api_env, wid_a)
    assert (state_a.severity, state_a.service, state_a.source) == ("P1", "checkout", "alertmanager")
    alert = state_a.alerts[0]
    assert alert.fingerprint == fp_a and alert.group_key and name in alert.group_key
    assert (
        alert.labels["instance"] == "a" and alert.annotations["summary"] == "p99 latency 6 s on a"
    )
    assert alert.generator_url == "http://prometheus.example/graph?g0.expr=up"
    # startsAt is the detection time (MTTD).
    assert alert.detected_at is not None and state_a.detected_at == alert.detected_at
    assert abs((alert.detected_at - datetime.now(UTC)).total_seconds()) < 60

    async def pages(incident_id: str) -> int:
        return sum(1 for row in api_env.stack.outbox(incident_id) if row.kind == "page")

    assert await eventually(lambda: pages(state_a.incident_id or "")) == 1

    # A second alert in the same group: Alertmanager re-sends the group with both alerts.
    await alertmanager.post(am_alert(name, "b", service="checkout", severity="warning", team="web"))
    fp_b = (await eventually(lambda: _has(alertmanager, name, "b")))["b"]
    wid_b = incident_workflow_id(fp_b, "alertmanager")
    state_b = await incident(api_env, wid_b)
    assert state_b.severity == "P3"
    state_a = await incident(api_env, wid_a, alert_count=2)  # the repeat joined, nothing new
    assert await api_env.runs(wid_a) == 1 and await api_env.runs(wid_b) == 1
    assert await pages(state_a.incident_id or "") == 1
    query = f"WorkflowType = 'IncidentWorkflow' AND IncidentDedupKey IN ('{fp_a}', '{fp_b}')"

    async def both_listed() -> bool:  # visibility lags the workflow a little
        return await api_env.count(query) == 2

    await eventually(both_listed)

    # Resolve both at the source: endsAt in the past; the resolved webhook follows.
    await alertmanager.post(
        am_alert(name, "a", resolved=True, service="checkout", severity="critical", team="web"),
        am_alert(name, "b", resolved=True, service="checkout", severity="warning", team="web"),
    )
    state_a = await incident(api_env, wid_a, status=Status.RESOLVED)
    state_b = await incident(api_env, wid_b, status=Status.RESOLVED)
    assert state_a.resolved_by == state_b.resolved_by == "alertmanager"
    assert await pages(state_a.incident_id or "") == 1


async def _has(am: Alertmanager, name: str, instance: str) -> dict[str, str] | None:
    found = await am.fingerprints(name)
    return found if instance in found else None


async def test_auto_resolve_off_keeps_the_incident_open(
    api_env: ApiEnv, alertmanager: Alertmanager, http_api: httpx.AsyncClient
) -> None:
    name = unique("FwBatchLate")
    await alertmanager.post(am_alert(name, "cron-1", team="batch"))
    fp = (await eventually(lambda: alertmanager.fingerprints(name)))["cron-1"]
    wid = incident_workflow_id(fp, "am-manual")
    state = await incident(api_env, wid)
    # No severity label: the policy's default (P2); the service comes from the integration.
    assert (state.severity, state.service) == ("P2", "batch")

    async def ignored() -> float:
        labels = {"source": "alertmanager", "outcome": "ignored"}
        return await metric(http_api, "firewatch_alerts_received_total", **labels)

    before = await ignored()
    await alertmanager.post(am_alert(name, "cron-1", resolved=True, team="batch"))

    async def counted() -> bool:
        return await ignored() > before

    await eventually(counted, timeout=30)
    state = await incident(api_env, wid)
    assert state.status == Status.TRIGGERED
