"""``/handoffs`` and ``firewatch handoff`` / ``ack-test`` against the real API, worker and
dev server: a note reaches the report, acknowledgements and the contact confirmation end
the handoff early with routing verified, and the result is kept."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain import rotation
from domain.policy import Policy, Role
from starter.incidents import list_incidents
from storage.database import Database, sqlite_url
from storage.handoffs import Handoffs
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api
from tests.dev.support import wait_for
from tests.workflows.helpers import open_incident, state_of
from workflows.handoff import HandoffInput, HandoffWorkflow


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ApiStack, Client, Policy]]:
    data = tmp_path_factory.mktemp("handoff-data")
    policy = api_policy(default_policy)
    async with running_api(dev_env, policy, data, "ho") as env:
        yield env.stack, env.client, policy


@pytest.fixture
def http(stack: tuple[ApiStack, Client, Policy]) -> Iterator[httpx.Client]:
    api = stack[0]
    with httpx.Client(base_url=api.url, headers=api.api_headers(), timeout=30) as client:
        yield client


@pytest.fixture
def firewatch(stack: tuple[ApiStack, Client, Policy], tmp_path: Path) -> CliRun:
    return cli_against(stack[0], tmp_path)


def _latest(http: httpx.Client, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get("/handoffs/latest")
        if response.status_code == 200 and response.json()["status"] == status:
            found: dict[str, Any] = response.json()
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {status} handoff: {response.status_code} {response.text}")
        time.sleep(0.1)


async def test_note_ack_confirm_show(
    stack: tuple[ApiStack, Client, Policy], http: httpx.Client, firewatch: CliRun
) -> None:
    api, client, policy = stack
    assert http.get("/handoffs/latest").status_code == 404
    assert "No handoff has run yet." in firewatch("handoff", "show").output
    now = datetime.now(UTC)
    start = rotation.shift_bounds(policy.roster.primary, now)[0]
    outgoing = rotation.holder(policy.roster, Role.PRIMARY, start - timedelta(seconds=1)).name
    incoming = rotation.holder(policy.roster, Role.PRIMARY, start).name

    result = firewatch("handoff", "note", "Watch the api pool resize", "--by", outgoing)
    assert result.exit_code == 0, result.output
    refused = http.post("/handoffs/notes", json={"by": "mallory", "text": "hi"})
    assert refused.status_code == 422

    # An alert from the generic integration: the report shows it sent something.
    alert = http.post(
        "/alerts",
        json={"summary": "Disk 91%", "severity": "P3", "dedup_key": uuid.uuid4().hex},
        headers={"Authorization": f"Bearer {api.key('generic')}"},
    )
    assert alert.status_code == 202, alert.text

    # An integration added at run time, silent so far: the report names it too.
    added = http.post(
        "/integrations", json={"kind": "grafana", "service": "web", "name": "grafana-web"}
    )
    assert added.status_code == 201, added.text

    # An open incident, listed by visibility before the handoff gathers its report.
    opened = await open_incident(client, api.task_queue, "P2", summary="Checkout slow")
    incident = (await state_of(opened)).incident_id
    assert incident is not None

    async def visible() -> bool:
        rows = await list_incidents(client, status="Triggered")
        return any(r["incident_id"] == incident for r in rows)

    await wait_for(visible, timeout=20, what="the incident in visibility")

    handle = await client.start_workflow(
        HandoffWorkflow.run,
        HandoffInput(role=Role.PRIMARY),
        id=f"handoff/api-{uuid.uuid4().hex[:8]}",
        task_queue=api.task_queue,
    )
    testing = await asyncio.to_thread(_latest, http, "testing")
    assert testing["report"]["incoming"]["name"] == incoming
    assert "Watch the api pool resize" in testing["text"]
    seen = {i["name"]: i["last_seen_at"] for i in testing["report"]["integrations"]}
    assert seen["generic"] is not None and seen["grafana"] is None
    assert "grafana: never sent anything" in testing["findings"]
    assert "grafana-web: never sent anything" in testing["findings"]
    (listed,) = [i for i in testing["report"]["incidents"] if i["incident_id"] == incident]
    assert listed["status"] == "Triggered" and listed["summary"] == "Checkout slow"
    assert listed["next_step"]  # the ladder's next page
    assert f"[P2] {incident} api: Checkout slow" in testing["text"]

    result = firewatch("ack-test", "sms", "--by", incoming)
    assert result.exit_code == 0, result.output
    assert f"Test page acknowledged: {incoming} sms." in result.output
    result = firewatch("ack-test", "voice", "--by", incoming)
    assert result.exit_code != 0
    assert "no 'voice' test page" in result.output
    result = firewatch("ack-test", "slack", "--by", incoming, "--handoff", testing["handoff_id"])
    assert result.exit_code == 0, result.output
    answer = http.post(
        "/handoffs/latest/ack-test", json={"by": incoming, "method": "email", "via": "api"}
    )
    assert answer.status_code == 200, answer.text
    assert firewatch("handoff", "confirm", "--by", incoming).exit_code == 0

    final = await handle.result()
    assert final is not None and final.unverified == []
    done = await asyncio.to_thread(_latest, http, "finished")
    assert done["contact_confirmed_at"] is not None
    shown = firewatch("handoff", "show", "--last").output
    assert "Verdict: routing verified" in shown
    assert f"{incoming} SMS: acknowledged" in shown
    late = http.post("/handoffs/latest/ack-test", json={"by": incoming, "method": "sms"})
    assert late.status_code == 409
    assert "is over" in late.json()["detail"]
    assert http.get("/handoffs", params={"role": "primary"}).json()[0]["status"] == "finished"

    # A second trigger for the same shift (a catch-up after an outage) sends nothing again.
    sent = len(api.outbox(final.handoff_id))
    assert sent >= 5  # two reports, three test pages, the shift change
    again = await client.execute_workflow(
        HandoffWorkflow.run,
        HandoffInput(role=Role.PRIMARY),
        id=f"handoff/api-{uuid.uuid4().hex[:8]}",
        task_queue=api.task_queue,
    )
    assert again is not None and again.workflow_id == final.workflow_id
    assert len(api.outbox(final.handoff_id)) == sent


def test_integration_seen_is_throttled(tmp_path: Path) -> None:
    rows = Handoffs(Database.open(sqlite_url(tmp_path)))
    t0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert rows.touch_due("grafana", t0)
    rows.touch_integration("grafana", t0)
    assert not rows.touch_due("grafana", t0 + timedelta(seconds=30))
    assert rows.touch_due("grafana", t0 + timedelta(minutes=1))
    rows.touch_integration("grafana", t0 + timedelta(minutes=1))
    rows.touch_integration("grafana", t0)  # an older time never moves it back
    assert rows.integrations_seen() == {"grafana": t0 + timedelta(minutes=1)}


def test_firewatch_test_page_with_only_the_outbox(
    firewatch: CliRun, stack: tuple[ApiStack, Client, Policy]
) -> None:
    """No real channel configured (the embedded default): every method is in the outbox
    only, and the CLI says so rather than claim it reached a phone."""
    shown = firewatch("test-page", "carol", "--by", "erin")
    assert shown.exit_code == 0, shown.output
    why = "is not set up here, or they have no address for it: in the outbox only"
    assert shown.stdout.splitlines() == [
        "Test page for carol:",
        f"  sms: in the outbox only: sms {why}",
        f"  slack: in the outbox only: slack {why}",
        f"  email: in the outbox only: email {why}",
    ]
    missing = firewatch("test-page", "zed", "--by", "erin")
    assert missing.exit_code != 0 and "'zed' is not on the roster" in missing.stderr
