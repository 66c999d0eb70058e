"""``/maintenance`` and ``firewatch maintenance`` against the real API, worker and dev server;
alerts during a window are accepted, recorded and page nobody (fast lane included)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.ids import incident_workflow_id
from domain.incident import IncidentState
from domain.policy import Policy
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api, unique
from workflows.incident import IncidentWorkflow

Run = CliRun
END_BEFORE_START = "a maintenance window with its end before its start"


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ApiStack, Client]]:
    data = tmp_path_factory.mktemp("maintenance-data")
    async with running_api(dev_env, api_policy(default_policy), data, "mw") as env:
        yield env.stack, env.client


@pytest.fixture
def http(stack: tuple[ApiStack, Client]) -> Iterator[httpx.Client]:
    api = stack[0]
    with httpx.Client(base_url=api.url, headers=api.api_headers(), timeout=30) as client:
        yield client


@pytest.fixture
def firewatch(stack: tuple[ApiStack, Client], tmp_path: Path) -> Run:
    return cli_against(stack[0], tmp_path)


def stored(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/maintenance", params={"all": "true"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


@pytest.mark.parametrize(
    ("changes", "status", "detail"),
    [
        (
            {"starts_at": "2099-01-01T12:00:00Z", "ends_at": "2099-01-01T10:00:00Z"},
            422,
            END_BEFORE_START + ": it would end at 2099-01-01 10:00 UTC but start at "
            "2099-01-01 12:00 UTC",
        ),
        ({"service": "nope"}, 422, "unknown service 'nope': Firewatch knows api, batch, database"),
        ({"reason": " "}, 422, "a maintenance window needs a reason"),
        ({"by": "mallory"}, 422, "'mallory' is not on the roster: only roster people act"),
    ],
)
def test_refused_windows_store_nothing(
    http: httpx.Client, changes: dict[str, str], status: int, detail: str
) -> None:
    before = stored(http)
    body = {"service": "api", "ends_at": "2099-01-01T10:00:00Z", "reason": "DB", "by": "alice"}
    response = http.post("/maintenance", json={**body, **changes})
    assert response.status_code == status, response.text
    assert response.json()["detail"] == detail
    assert stored(http) == before


def test_the_cli_refuses_an_end_before_the_start(http: httpx.Client, firewatch: Run) -> None:
    before = stored(http)
    result = firewatch(
        "maintenance", "start", "--service", "api", "--reason", "DB upgrade", "--by", "alice",
        "--from", "2099-01-01T12:00Z", "--to", "2099-01-01T10:00Z",
    )  # fmt: skip
    assert result.exit_code == 1
    assert END_BEFORE_START in result.output and "(HTTP 422)" in result.output
    assert firewatch("maintenance", "start", "--service", "api", "--reason", "x").exit_code == 2
    assert stored(http) == before


def test_unknown_window_and_window_over(http: httpx.Client) -> None:
    response = http.post("/maintenance/99999/end", json={"by": "alice"})
    assert response.status_code == 404
    assert response.json()["detail"] == "no maintenance window 99999"


async def _state(client: Client, workflow_id: str) -> IncidentState:
    for _ in range(200):
        state = await client.get_workflow_handle(workflow_id).query(IncidentWorkflow.state)
        if state is not None and state.incident_id is not None:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} did not open")


async def _eventually(
    client: Client, workflow_id: str, check: Callable[[IncidentState], bool]
) -> IncidentState:
    for _ in range(300):
        state = await _state(client, workflow_id)
        if check(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id}: condition not met")


async def test_start_list_alert_end(
    stack: tuple[ApiStack, Client], http: httpx.Client, firewatch: Run
) -> None:
    api, client = stack
    result = await asyncio.to_thread(
        firewatch, "maintenance", "start", "--service", "api", "--for", "2h",
        "--reason", "DB upgrade", "--by", "alice", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    window = json.loads(result.output)
    assert (window["service"], window["phase"], window["created_by"]) == ("api", "active", "alice")
    listed = await asyncio.to_thread(firewatch, "maintenance", "list")
    assert listed.exit_code == 0 and f"{window['id']}   api      active" in listed.output

    # A generic alert (the fast lane serves it) and a PagerDuty event: accepted, nobody paged.
    key = unique("mw")
    alert = {"summary": "DB down", "severity": "P1", "dedup_key": key}
    headers = {"Authorization": f"Bearer {api.key('generic')}"}
    response = await asyncio.to_thread(http.post, "/alerts", json=alert, headers=headers)
    assert response.status_code == 202, response.text
    message = response.json()["message"]
    assert message.startswith("accepted; nobody paged: api is in maintenance until ")
    assert message.endswith(f"(DB upgrade, window {window['id']})")
    event = {
        "routing_key": api.key("pagerduty"),
        "event_action": "trigger",
        "dedup_key": unique("mw-pd"),
        "payload": {"summary": "Replica lag", "source": "db-1", "severity": "critical"},
    }
    response = await asyncio.to_thread(http.post, "/v2/enqueue", json=event)
    assert response.status_code == 202, response.text
    assert response.json()["message"].startswith("Event processed; nobody paged: api is in")

    workflow_id = incident_workflow_id(key, "generic")
    state = await _state(client, workflow_id)
    assert state.paging_hold is not None and state.pages == []
    assert any(e.text.startswith("Not paged: api is in maintenance") for e in state.timeline)
    assert api.outbox(state.incident_id or "") == []

    # Ended early: the window is over for new alerts, and the held incident starts paging.
    ended = await asyncio.to_thread(
        firewatch, "maintenance", "end", str(window["id"]), "--by", "bob"
    )
    assert ended.exit_code == 0, ended.output
    assert ended.output.startswith(f"Ended window {window['id']} (api, DB upgrade)")
    state = await _eventually(client, workflow_id, lambda s: bool(s.pages))
    assert any("ended early by bob" in e.text for e in state.timeline)
    assert (await asyncio.to_thread(firewatch, "maintenance", "list")).output == (
        "no maintenance windows\n"
    )
    row = next(r for r in stored(http) if r["id"] == window["id"])
    assert (row["phase"], row["ended_by"]) == ("ended", "bob")
    again = await asyncio.to_thread(
        http.post, "/alerts", json={**alert, "dedup_key": unique("mw")}, headers=headers
    )
    assert "message" not in again.json()


def test_a_service_known_only_by_an_added_integration_can_be_in_maintenance(
    http: httpx.Client,
) -> None:
    service = unique("web")
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    window = {"service": service, "ends_at": ends_at, "reason": "x", "by": "alice"}
    refused = http.post("/maintenance", json=window)
    assert refused.status_code == 422 and "unknown service" in refused.text
    added = http.post("/integrations", json={"kind": "grafana", "service": service})
    assert added.status_code == 201, added.text
    response = http.post("/maintenance", json=window)
    assert response.status_code == 201, response.text
    assert response.json()["service"] == service
    ended = http.post(f"/maintenance/{response.json()['id']}/end", json={"by": "alice"})
    assert ended.status_code == 200, ended.text
