"""POST /v2/enqueue with the real PagerDuty clients (pagerduty 7.x and pdpyras)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pdpyras  # type: ignore[import-untyped]
import pytest
from pagerduty import EventsApiV2Client

from domain.ids import incident_workflow_id
from domain.incident import IncidentState, Status
from tests.api.api_support import ApiEnv, eventually, unique


def pd_client(api_env: ApiEnv, integration: str = "pagerduty") -> EventsApiV2Client:
    client = EventsApiV2Client(api_env.stack.key(integration))
    client._url = api_env.url  # the client refuses http:// through its setter
    return client


async def opened(api_env: ApiEnv, workflow_id: str) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id)
        return state if state is not None and state.incident_id else None

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

    # Machine acks are accepted and change nothing: only people on the roster acknowledge.
    assert await asyncio.to_thread(client.acknowledge, key) == key
    await asyncio.sleep(0.5)
    after_ack = await api_env.state(wid)
    assert after_ack is not None
    assert (after_ack.status, after_ack.acknowledged_at) == (Status.TRIGGERED, None)

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
    assert re.fullmatch(r"[0-9a-f]{32}", key)
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
    await asyncio.to_thread(session.acknowledge, key)
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
