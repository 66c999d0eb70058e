"""Alerts during maintenance page nobody; the window's end starts the ladder (time-skipping).

The window is stored and its workflow started as ``POST /maintenance`` does; the incident is
opened as ingest opens it during a window (``open_or_join(..., hold=...)``). The outbox is
every notification the worker decided (no channel configured): nothing is paged or posted
for a held incident until the window is over.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.incident import IncidentState, ResolveRequest
from domain.maintenance import MaintenanceWindow, NewWindow, maintenance_workflow_id
from domain.messages import MaintenanceEndedMessage, MaintenanceStartedMessage
from domain.policy import Policy
from domain.templates import render_maintenance_message
from starter.incidents import open_or_join
from storage.maintenance import MaintenanceWindows
from storage.store import OutboxRow, Store
from tests.workflows.helpers import make_alert, state_of, wait_until
from workflows.incident import IncidentWorkflow
from workflows.maintenance import EndMaintenance, MaintenanceWindowWorkflow

HOUR = timedelta(hours=1)
HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def start_window(
    client: Client, queue: str, data: Path, starts_at: datetime, length: timedelta
) -> tuple[MaintenanceWindow, WorkflowHandle[Any, Any]]:
    new = NewWindow(
        service="api",
        starts_at=starts_at,
        ends_at=starts_at + length,
        reason="DB upgrade",
        created_by="alice",
    )
    window = MaintenanceWindows(Store(data).database).add(new, starts_at)
    handle = await client.start_workflow(
        MaintenanceWindowWorkflow.run,
        window,
        id=maintenance_workflow_id(window.id),
        task_queue=queue,
    )
    return window, handle


async def open_held(
    client: Client, queue: str, window: MaintenanceWindow
) -> WorkflowHandle[Any, Any]:
    handle = await open_or_join(client, make_alert("P1"), task_queue=queue, hold=window.hold())
    await handle.execute_update(IncidentWorkflow.opened)
    return handle


def outbox(data: Path, incident: IncidentState) -> list[OutboxRow]:
    return Store(data).notifications(incident.incident_id)


def announcements(data: Path, window: MaintenanceWindow) -> list[OutboxRow]:
    return Store(data).notifications(maintenance_workflow_id(window.id))


def started_message(window: MaintenanceWindow) -> MaintenanceStartedMessage:
    return MaintenanceStartedMessage(
        window=window.id,
        service=window.service,
        reason=window.reason,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        by=window.created_by,
    )


async def test_an_alert_during_maintenance_pages_nobody_until_the_window_ends(
    ts_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, queue: str
) -> None:
    client = ts_env.client
    now = await ts_env.get_current_time()
    window, mw = await start_window(client, queue, tmp_path, now, 2 * HOUR)
    incident = await open_held(client, queue, window)

    await ts_env.sleep(HOUR + 30 * timedelta(minutes=1))
    st = await state_of(incident)
    assert st.pages == [] and st.paging_hold is not None
    assert outbox(tmp_path, st) == []  # no page, no #incidents post, nothing
    held = [e.text for e in st.timeline if e.kind == "maintenance"]
    # The time alone on the same UTC day; with its date when the window ends after midnight.
    ends, opened = window.ends_at.astimezone(UTC), st.opened_at.astimezone(UTC)
    until = f"{ends:%H:%M} UTC" if ends.date() == opened.date() else f"{ends:%Y-%m-%d %H:%M} UTC"
    assert held == [
        f"Not paged: api is in maintenance (DB upgrade, window {window.id}) until {until}"
    ]
    assert st.next_step_label == "paging release"

    # The window is over: the ladder starts as for a new incident opening then.
    await ts_env.sleep(HOUR)
    st = await wait_until(incident, lambda s: bool(s.pages))
    assert st.paging_hold is None
    # At the window's end (the incident's own timer, or the window's release signal, a few
    # milliseconds apart: whichever comes first).
    assert abs(st.pages[0].at - window.ends_at) < timedelta(seconds=1)
    assert st.pages[0].level == 0
    released = [e for e in st.timeline if e.kind == "maintenance"][-1]
    assert released.at == st.pages[0].at
    assert released.text == (
        f"Maintenance window {window.id} (DB upgrade) ended: paging starts now, as for a new "
        "incident"
    )
    kinds = [(n.kind, n.recipient) for n in outbox(tmp_path, st)]
    assert ("initial_alert", "#incidents") in kinds and ("page", st.pages[0].person) in kinds

    # Announced in #incidents at its start and its end, as rendered from the window.
    assert await mw.result() == "ended"
    rows = announcements(tmp_path, window)
    assert [(r.kind, r.recipient) for r in rows] == [
        ("maintenance_started", "#incidents"),
        ("maintenance_ended", "#incidents"),
    ]
    for row, due in zip(rows, (window.starts_at, window.ends_at), strict=True):
        assert abs(row.scheduled_at - due) < timedelta(seconds=1)
    started = started_message(window)
    ended = MaintenanceEndedMessage(**started.model_dump(), ended_at=window.ends_at)
    for row, message in zip(rows, (started, ended), strict=True):
        rendered = render_maintenance_message(message, default_policy)
        assert (row.subject, row.text) == (rendered.subject, rendered.text)

    await incident.execute_update(
        IncidentWorkflow.resolve, ResolveRequest(by="alice", root_cause="upgrade", fix="done")
    )
    await incident.result()
    if os.environ.get("FIREWATCH_RECORD_HISTORIES"):  # see tests/histories/record.py
        for handle, name in ((mw, "maintenance_window"), (incident, "incident_held_released")):
            history = await handle.fetch_history()
            text = json.dumps(history.to_json_dict(), indent=1)
            (HISTORIES / f"{name}.json").write_text(text)


async def test_ending_the_window_early_releases_its_incidents_then(
    ts_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path, queue: str
) -> None:
    client = ts_env.client
    now = await ts_env.get_current_time()
    window, mw = await start_window(client, queue, tmp_path, now, 2 * HOUR)
    incident = await open_held(client, queue, window)
    await ts_env.sleep(30 * timedelta(minutes=1))
    assert (await state_of(incident)).pages == []

    ended_at = await ts_env.get_current_time()
    await mw.signal(MaintenanceWindowWorkflow.end, EndMaintenance(by="bob", at=ended_at))
    assert await mw.result() == "ended"
    st = await wait_until(incident, lambda s: bool(s.pages))
    assert st.pages[0].at < window.ends_at
    assert any(
        e.text.startswith(f"Maintenance window {window.id} (DB upgrade) ended early by bob")
        for e in st.timeline
    )
    ended_row = announcements(tmp_path, window)[-1]
    assert ended_row.kind == "maintenance_ended"
    assert "early by Bob Berg (it was to end at" in ended_row.text


async def test_a_window_to_come_is_announced_when_it_starts_and_can_be_cancelled(
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str
) -> None:
    client = ts_env.client
    now = await ts_env.get_current_time()
    later, later_mw = await start_window(client, queue, tmp_path, now + 3 * HOUR, HOUR)
    cancelled, cancelled_mw = await start_window(client, queue, tmp_path, now + 3 * HOUR, HOUR)
    await ts_env.sleep(HOUR)
    assert announcements(tmp_path, later) == []
    await cancelled_mw.signal(
        MaintenanceWindowWorkflow.end, EndMaintenance(by="bob", at=now + HOUR)
    )
    assert await cancelled_mw.result() == "cancelled"
    assert await later_mw.result() == "ended"
    assert [r.kind for r in announcements(tmp_path, later)] == [
        "maintenance_started",
        "maintenance_ended",
    ]
    for row, due in zip(
        announcements(tmp_path, later), (later.starts_at, later.ends_at), strict=True
    ):
        assert abs(row.scheduled_at - due) < timedelta(seconds=1)
    assert announcements(tmp_path, cancelled) == []


async def test_a_hold_for_a_window_already_over_pages_at_once(
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str
) -> None:
    """The window ended between the ingest's look and the opening: its workflow is gone."""
    now = await ts_env.get_current_time()
    gone = MaintenanceWindow(
        id=999,
        service="api",
        starts_at=now - HOUR,
        ends_at=now + HOUR,
        reason="DB upgrade",
        created_by="alice",
        created_at=now - HOUR,
    )
    incident = await open_held(ts_env.client, queue, gone)
    st = await wait_until(incident, lambda s: bool(s.pages))
    assert st.paging_hold is None
    assert [e.kind for e in st.timeline][:3] == ["opened", "maintenance", "maintenance"]
