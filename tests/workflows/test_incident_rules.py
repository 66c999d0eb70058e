"""No-progress escalation, update cadence, stakeholder deadlines, severity changes, P3 review."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.incident import (
    AcknowledgeRequest,
    EscalateRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
)
from domain.policy import WEEKDAYS, BusinessHours, Policy, Role, Severity
from domain.rotation import holder
from tests.conftest import running_worker
from tests.workflows.helpers import (
    first_paged,
    minutes,
    open_incident,
    page_offsets,
    state_of,
    wait_until,
)
from workflows.incident import IncidentWorkflow


def offsets(
    tmp_path: Path, incident_id: str | None, kind: str, opened: datetime
) -> list[tuple[timedelta, str]]:
    return [
        (n.scheduled_at - opened, n.recipient)
        for n in Store(tmp_path).notifications(incident_id)
        if n.kind == kind
    ]


async def test_p1_no_progress_pages_management_an_hour_after_ack(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(minutes(5))
    paged = await first_paged(handle)
    st = await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    acked = st.acknowledged_at
    assert acked is not None
    await ts_env.sleep(minutes(70))
    st = await state_of(handle)

    roster = default_policy.roster
    got = {
        (o - (acked - st.opened_at), who)
        for o, who in offsets(tmp_path, st.incident_id, "no_progress", st.opened_at)
    }
    assert got == {(minutes(60), roster.team_lead), (minutes(60), roster.engineering_manager)}


async def test_an_update_counts_as_progress_and_resets_the_update_clock(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    paged = await first_paged(handle)
    st = await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    acked = st.acknowledged_at
    assert acked is not None
    # 20 min: the 15-min reminder has gone out, the 30-min overdue not yet.
    await ts_env.sleep(minutes(20))
    update = StatusUpdateRequest(
        by=paged, message="Rolling back deploy 412", status=Status.MITIGATING
    )
    st = await handle.execute_update(IncidentWorkflow.post_update, update)
    assert st.status == Status.MITIGATING and st.mitigated_at is not None
    updated = st.last_update_at
    assert updated is not None
    await ts_env.sleep(minutes(95))
    st = await state_of(handle)

    since_ack = [
        o - (acked - st.opened_at)
        for o, _ in offsets(tmp_path, st.incident_id, "update_reminder", st.opened_at)
    ]
    assert since_ack[0] == minutes(15)
    # After the update the clock restarts: reminders at +15, +45, +75 and overdue at +30, +60, +90.
    since_update = [
        o - (updated - st.opened_at)
        for o, _ in offsets(tmp_path, st.incident_id, "update_reminder", st.opened_at)
    ][1:]
    assert since_update == [minutes(15), minutes(45), minutes(75)]
    overdue = offsets(tmp_path, st.incident_id, "update_overdue", st.opened_at)
    assert [o - (updated - st.opened_at) for o, _ in overdue] == [
        minutes(30),
        minutes(60),
        minutes(90),
    ]
    # The primary acked, so overdue goes to the next level: the secondary on call.
    secondary = {
        holder(default_policy.roster, Role.SECONDARY, st.opened_at + o).name for o, _ in overdue
    }
    assert {who for _, who in overdue} == secondary and paged not in secondary
    # No-progress is a standing rule: the update restarted its clock, so the quiet hour
    # after it pages the team lead and the manager once, at update + 60 (not ack + 60).
    roster = default_policy.roster
    no_progress = {
        (o - (updated - st.opened_at), who)
        for o, who in offsets(tmp_path, st.incident_id, "no_progress", st.opened_at)
    }
    assert no_progress == {
        (minutes(60), roster.team_lead),
        (minutes(60), roster.engineering_manager),
    }
    reminders_to = {
        who for _, who in offsets(tmp_path, st.incident_id, "update_reminder", st.opened_at)
    }
    assert reminders_to == {paged}


async def test_p2_cadence_is_two_and_four_hours(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P2")
    paged = await first_paged(handle)
    st = await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    acked = st.acknowledged_at
    assert acked is not None
    await ts_env.sleep(timedelta(hours=4, minutes=30))
    st = await state_of(handle)
    base = acked - st.opened_at
    assert [
        o - base for o, _ in offsets(tmp_path, st.incident_id, "update_reminder", st.opened_at)
    ] == [timedelta(hours=2)]
    assert [
        o - base for o, _ in offsets(tmp_path, st.incident_id, "update_overdue", st.opened_at)
    ] == [timedelta(hours=4)]
    # No update for 4 h after the ack: management is paged.
    assert [
        o - base for o, _ in offsets(tmp_path, st.incident_id, "no_progress", st.opened_at)
    ] == [timedelta(hours=4)] * 2


async def test_stakeholder_notice_goes_out_at_the_deadline_unless_a_human_update_did(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    silent = await open_incident(ts_env.client, queue, "P1")
    talkative = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(minutes(10))
    update = StatusUpdateRequest(by="alice", message="Investigating elevated latency")
    await talkative.execute_update(IncidentWorkflow.post_update, update)
    await ts_env.sleep(minutes(60))
    quiet_state, spoken_state = await state_of(silent), await state_of(talkative)

    assert offsets(
        tmp_path, quiet_state.incident_id, "stakeholder_notice", quiet_state.opened_at
    ) == [(minutes(60), default_policy.channels.stakeholders)]
    assert (
        offsets(tmp_path, spoken_state.incident_id, "stakeholder_notice", spoken_state.opened_at)
        == []
    )
    to_stakeholders = [
        n
        for n in Store(tmp_path).notifications(spoken_state.incident_id)
        if n.recipient == default_policy.channels.stakeholders
    ]
    assert [n.kind for n in to_stakeholders] == ["status_update"]
    assert "Investigating elevated latency" in to_stakeholders[0].text


async def test_severity_change_mid_ladder_replans_every_timer_from_now(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P2")
    await ts_env.sleep(minutes(30))
    change = SeverityChangeRequest(by="erin", severity=Severity.P0)
    st = await handle.execute_update(IncidentWorkflow.change_severity, change)
    changed = st.replanned_at - st.opened_at
    # The reply is the incident after the change: what it made due has been done.
    assert st.replanned_at is not None and st.next_step_at is not None
    assert st.next_step_at > st.replanned_at, (st.next_step_label, st.next_step_at)
    assert [p.role for p in st.pages][-1] == Role.PRIMARY and len(st.pages) == 2
    await ts_env.sleep(minutes(100))
    st = await state_of(handle)

    assert st.severity == Severity.P0
    assert [(o, r) for o, r, _ in page_offsets(st)] == [
        (timedelta(0), "primary"),
        (changed, "primary"),
        (changed + minutes(15), "secondary"),
        (changed + minutes(45), "team_lead"),
        (changed + minutes(90), "engineering_manager"),
    ]
    informed = offsets(tmp_path, st.incident_id, "inform", st.opened_at)
    assert sorted(informed) == sorted([(changed, "erin"), (changed, "frank")])
    assert offsets(tmp_path, st.incident_id, "stakeholder_notice", st.opened_at) == [
        (changed + minutes(30), default_policy.channels.stakeholders)
    ]
    assert [n.kind for n in Store(tmp_path).notifications(st.incident_id)].count(
        "severity_changed"
    ) == 1


async def test_escalate_now_pages_the_next_level_and_continues_from_there(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(minutes(5))
    reply = await handle.execute_update(
        IncidentWorkflow.escalate, EscalateRequest(by="alice", reason="need DB help")
    )
    # The reply is the incident after the escalation: the secondary paged and holding it.
    secondary = reply.pages[-1]
    assert (secondary.role, reply.assignee) == (Role.SECONDARY, secondary.person)
    assert reply.next_step_at is not None and reply.next_step_at > secondary.at
    await ts_env.sleep(minutes(40))
    st = await state_of(handle)
    assert [(o, r) for o, r, _ in page_offsets(st)] == [
        (timedelta(0), "primary"),
        (page_offsets(st)[1][0], "secondary"),
        (page_offsets(st)[1][0] + minutes(30), "team_lead"),
    ]
    assert minutes(5) <= page_offsets(st)[1][0] < minutes(6)


async def test_an_ack_by_someone_not_paged_escalates_above_them(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    """The secondary sees #incidents and acknowledges before the ladder reaches them: an
    escalate pages the team lead (above the secondary), not the primary below, and an
    overdue update is reported to the team lead too."""
    handle = await open_incident(ts_env.client, queue, "P1")
    st = await state_of(handle)
    roster = default_policy.roster
    secondary = holder(roster, Role.SECONDARY, st.opened_at).name
    lead = holder(roster, Role.TEAM_LEAD, st.opened_at).name
    assert [p.role for p in st.pages] == [Role.PRIMARY]  # only the primary paged so far
    await ts_env.sleep(minutes(2))
    acked = await handle.execute_update(
        IncidentWorkflow.acknowledge, AcknowledgeRequest(by=secondary)
    )
    assert (acked.assignee, acked.assignee_level) == (secondary, 1)
    escalated = await handle.execute_update(
        IncidentWorkflow.escalate, EscalateRequest(by=secondary, reason="need the lead")
    )
    page = escalated.pages[-1]
    assert (page.role, page.person, page.level) == (Role.TEAM_LEAD, lead, 2)
    await ts_env.sleep(minutes(45))  # P1 updates are due every 30 minutes
    overdue = [e.text for e in (await state_of(handle)).timeline if e.kind == "update_overdue"]
    assert overdue and all("(Team Lead)" in text for text in overdue), overdue


async def test_p3_review_is_scheduled_on_the_next_business_day_skipping_the_weekend(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    # The test server's clock starts at the real time, so make the next two days a "weekend".
    today = datetime.now(UTC).date()
    weekend = {WEEKDAYS[(today + timedelta(days=d)).weekday()] for d in (1, 2)}
    hours = BusinessHours(
        timezone="UTC",
        start=time(9),
        end=time(17),
        days=tuple(d for d in WEEKDAYS if d not in weekend),
    )
    policy = default_policy.model_copy(update={"business_hours": hours})
    async with running_worker(ts_env.client, policy, tmp_path, executor) as (_, queue):
        handle = await open_incident(ts_env.client, queue, "P3", summary="Typo in footer")
        st = await wait_until(handle, lambda s: s.review_at is not None)
        assert st.review_at is not None
        opened = st.opened_at
        await ts_env.sleep(st.review_at - opened + minutes(1))
        st = await state_of(handle)

    expected = datetime.combine(today + timedelta(days=3), time(9), UTC)
    if opened.date() != today:  # the test straddled midnight UTC
        expected += timedelta(days=1)
    assert st.review_at == expected
    reviews = offsets(tmp_path, st.incident_id, "p3_review", opened)
    assert reviews == [(expected - opened, default_policy.channels.incidents)]
    assert st.pages == []
