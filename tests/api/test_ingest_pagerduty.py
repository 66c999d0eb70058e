"""POST /v2/enqueue with the real PagerDuty clients (pagerduty 7.x and pdpyras)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pdpyras  # type: ignore[import-untyped]
import pytest
from pagerduty import EventsApiV2Client

from domain.ids import incident_workflow_id
from domain.incident import IncidentState, Status
from domain.policy import Policy
from starter.api.context import ApiSettings
from tests.api.api_support import ApiEnv, ApiStack, eventually, free_port, metric, unique


def pd_client(api_env: ApiEnv, integration: str = "pagerduty") -> EventsApiV2Client:
    client = EventsApiV2Client(api_env.stack.key(integration))
    client._url = api_env.url  # the client refuses http:// through its setter
    return client


async def opened(api_env: ApiEnv, workflow_id: str) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id)
        return state if state is not None and state.incident_id else None

    return await eventually(probe)


async def acknowledged(api_env: ApiEnv, workflow_id: str) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id)
        return state if state is not None and state.acknowledged_at is not None else None

    return await eventually(probe)


async def test_trigger_repeat_acknowledge_resolve(api_env: ApiEnv) -> None:
    client = pd_client(api_env)
    key = unique("pd-checkout")
    wid = incident_workflow_id(key, "pagerduty")

    returned = await asyncio.to_thread(
        client.trigger, "Checkout 5xx above 5%", "web-01", dedup_key=key, severity="critical"
    )
    assert returned == key
    state = await opened(api_env, wid)
    assert (state.severity, state.service, state.source) == ("P1", "api", "pagerduty")
    assert state.alerts[0].details["source"] == "web-01"

    # Paging happens once; a retried or repeated trigger only joins the incident.
    async def paged() -> int:
        return sum(1 for row in api_env.stack.outbox(state.incident_id or "") if row.kind == "page")

    assert await eventually(paged) == 1
    await asyncio.to_thread(client.trigger, "Checkout 5xx above 5%", "web-01", dedup_key=key)

    async def counted() -> IncidentState | None:
        st = await api_env.state(wid)
        return st if st is not None and st.alert_count == 2 else None

    await eventually(counted)
    assert await api_env.runs(wid) == 1
    assert await paged() == 1

    # An acknowledge event acknowledges, in the integration's name, as PagerDuty does.
    assert await asyncio.to_thread(client.acknowledge, key) == key
    after_ack = await acknowledged(api_env, wid)
    assert (after_ack.status, after_ack.acknowledged_by) == (Status.INVESTIGATING, "pagerduty")
    # The paged person keeps the incident (its update reminders go to them).
    assert after_ack.assignee is not None and after_ack.assignee == after_ack.pages[0].person
    # A second acknowledge changes nothing (the first one's time and author stay).
    assert await asyncio.to_thread(client.acknowledge, key) == key
    # The 202 came after the signal was durable, and a query sees every signal accepted
    # before it: the second acknowledge has been applied (as a no-op) by now.
    again = await api_env.state(wid)
    assert again is not None
    assert (again.acknowledged_at, again.acknowledged_by) == (
        after_ack.acknowledged_at,
        "pagerduty",
    )

    assert await asyncio.to_thread(client.resolve, key) == key

    async def resolved() -> IncidentState | None:
        st = await api_env.state(wid)
        return st if st is not None and st.status == Status.RESOLVED else None

    state = await eventually(resolved)
    assert state.resolved_by == "pagerduty"
    # Once resolved, further resolves and acks are ignored, as PagerDuty ignores them.
    assert await asyncio.to_thread(client.resolve, key) == key
    assert await asyncio.to_thread(client.acknowledge, key) == key


async def test_generated_dedup_key(api_env: ApiEnv) -> None:
    client = pd_client(api_env)
    key = await asyncio.to_thread(client.trigger, "Disk 91% full", "db-02", severity="warning")
    # Readable in the Temporal UI: service, UTC minute, summary, a random suffix.
    assert re.fullmatch(r"[a-z0-9-]+-\d{4}-\d{2}-\d{2}T\d{4}Z-disk-91-full-[0-9a-f]{8}", key)
    state = await opened(api_env, incident_workflow_id(key, "pagerduty"))
    assert (state.dedup_key, state.severity) == (key, "P3")


async def test_pdpyras_session_against_a_second_integration(api_env: ApiEnv) -> None:
    session = pdpyras.EventsAPISession(api_env.stack.key("pd-db"))
    session.url = api_env.url
    key = unique("pd-db")
    wid = incident_workflow_id(key, "pd-db")
    assert (
        await asyncio.to_thread(
            session.trigger,
            "Replica lag 40 s",
            "db-03",
            dedup_key=key,
            severity="info",
            custom_details={"priority": "P0", "lag_s": 40},
        )
        == key
    )
    state = await opened(api_env, wid)
    # custom_details.priority P0 wins over the severity mapping; service comes from config.
    assert (state.severity, state.service) == ("P0", "database")
    assert state.status == Status.TRIGGERED
    await asyncio.to_thread(session.acknowledge, key)
    acked = await acknowledged(api_env, wid)
    assert (acked.status, acked.acknowledged_by) == (Status.INVESTIGATING, "pd-db")
    assert acked.assignee is not None and acked.assignee == acked.pages[0].person  # kept
    await asyncio.to_thread(session.resolve, key)

    async def resolved() -> bool:
        st = await api_env.state(wid)
        return st is not None and st.status == Status.RESOLVED

    await eventually(resolved)


@pytest.mark.parametrize(
    ("severity", "details", "expected"),
    [
        ("critical", None, "P1"),
        ("error", None, "P2"),
        ("warning", None, "P3"),
        ("info", None, "P3"),
        ("info", {"severity": "p1"}, "P1"),
    ],
)
async def test_severity_mapping(
    api_env: ApiEnv,
    http: httpx.AsyncClient,
    severity: str,
    details: dict[str, str] | None,
    expected: str,
) -> None:
    payload: dict[str, object] = {"summary": "mapped", "source": "h", "severity": severity}
    if details:
        payload["custom_details"] = details
    event = {
        "routing_key": api_env.stack.key("pagerduty"),
        "event_action": "trigger",
        "payload": payload,
    }
    response = await http.post("/v2/enqueue", json=event)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["message"]) == ("success", "Event processed")
    state = await opened(api_env, incident_workflow_id(body["dedup_key"], "pagerduty"))
    assert state.severity == expected


async def test_resolve_and_ack_for_unknown_key_start_nothing(
    api_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    key = unique("never-triggered")
    ignored_before = await metric(
        http, "firewatch_alerts_received_total", source="pagerduty", outcome="ignored"
    )
    for action in ("resolve", "acknowledge"):
        event = {
            "routing_key": api_env.stack.key("pagerduty"),
            "event_action": action,
            "dedup_key": key,
        }
        response = await http.post("/v2/enqueue", json=event)
        assert response.status_code == 202
        assert response.json()["dedup_key"] == key
    assert await api_env.runs(incident_workflow_id(key, "pagerduty")) == 0
    ignored = await metric(
        http, "firewatch_alerts_received_total", source="pagerduty", outcome="ignored"
    )
    assert ignored == ignored_before + 2


async def test_acknowledge_is_counted(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    key = unique("pd-ack-metric")
    routing_key = api_env.stack.key("pagerduty")
    trigger = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "Queue backlog", "source": "mq-1", "severity": "error"},
    }
    assert (await http.post("/v2/enqueue", json=trigger)).status_code == 202
    await opened(api_env, incident_workflow_id(key, "pagerduty"))
    before = await metric(
        http, "firewatch_alerts_received_total", source="pagerduty", outcome="acknowledged"
    )
    ack = {"routing_key": routing_key, "event_action": "acknowledge", "dedup_key": key}
    response = await http.post("/v2/enqueue", json=ack)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": key}
    after = await metric(
        http, "firewatch_alerts_received_total", source="pagerduty", outcome="acknowledged"
    )
    assert after == before + 1
    state = await acknowledged(api_env, incident_workflow_id(key, "pagerduty"))
    assert state.acknowledged_by == "pagerduty"


@pytest.fixture
async def api_without_temporal(default_policy: Policy, tmp_path: Path) -> AsyncIterator[ApiStack]:
    """The API alone, its Temporal address a port nobody listens on."""
    stack = ApiStack(
        target=f"127.0.0.1:{free_port()}",
        namespace="default",
        policy=default_policy,
        data=tmp_path / "data",
        with_worker=False,
        settings=ApiSettings(temporal_retry_s=0.3, retry_after_s=2),
    )
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_acknowledge_and_resolve_answer_503_without_temporal(
    api_without_temporal: ApiStack, action: str
) -> None:
    """No 2xx before Temporal's durable write: with Temporal down the sender must retry."""
    event = {
        "routing_key": api_without_temporal.key("pagerduty"),
        "event_action": action,
        "dedup_key": unique("pd-down"),
    }
    async with httpx.AsyncClient(base_url=api_without_temporal.url, timeout=30) as http:
        response = await http.post("/v2/enqueue", json=event)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert response.json()["status"] == "invalid event"


async def test_alerts_are_taken_while_firewatch_database_is_unreachable(
    api_env: ApiEnv,
) -> None:
    """Alerts go to Temporal, not to Firewatch's database: with the database gone (here the
    added integrations' reads point at a port nobody listens on), the policy file's keys
    still open incidents; the reads resume when it is back."""
    from starter import secrets
    from storage.database import Database

    secrets.added_integrations(api_env.stack.data)  # the API's view of them, made if new
    [view] = [v for (data, _), v in secrets._added_files.items() if data == api_env.stack.data]
    reachable = view.database
    view.database = Database("postgresql://firewatch@127.0.0.1:1/firewatch")
    try:
        key = unique("pd-db-down")
        client = pd_client(api_env)
        await asyncio.to_thread(client.trigger, "Checkout 5xx above 5%", "web-01", dedup_key=key)
        state = await opened(api_env, incident_workflow_id(key, "pagerduty"))
        assert state.source == "pagerduty"
    finally:
        view.database = reachable
        view.retry_now()  # the session's API goes on with the current list
