"""Maintenance windows' pure rules: validation, "in maintenance at t", texts, the held plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import diagnostics, transitions
from domain.escalation import StepKind, plan
from domain.incident import EscalateRequest, IncidentState, LadderRun, Status
from domain.maintenance import (
    MaintenanceRefused,
    MaintenanceWindow,
    PagingHold,
    check_end,
    in_maintenance,
    ingest_note,
    not_paged_text,
    validate_window,
)
from domain.messages import MessageKind
from domain.policy import Policy, Severity
from domain.runbooks import RunbookRun
from tests.conftest import load_default_policy

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POLICY = load_default_policy()


def window(**changes: object) -> MaintenanceWindow:
    fields: dict[str, object] = {
        "id": 3,
        "service": "api",
        "starts_at": T0,
        "ends_at": T0 + 2 * HOUR,
        "reason": "DB upgrade",
        "created_by": "alice",
        "created_at": T0,
    }
    return MaintenanceWindow(**{**fields, **changes})


def new(policy: Policy = POLICY, **changes: object) -> object:
    fields: dict[str, object] = {
        "service": "api",
        "starts_at": T0,
        "ends_at": T0 + 2 * HOUR,
        "reason": "DB upgrade",
        "by": "alice",
        "now": T0,
    }
    return validate_window(policy, **{**fields, **changes})  # type: ignore[arg-type]


def refused(**changes: object) -> MaintenanceRefused:
    with pytest.raises(MaintenanceRefused) as info:
        new(**changes)
    return info.value


def test_a_good_window_passes_as_given() -> None:
    ok = new(reason="  DB   upgrade ")
    assert ok.model_dump() == {  # type: ignore[attr-defined]
        "service": "api",
        "starts_at": T0,
        "ends_at": T0 + 2 * HOUR,
        "reason": "DB upgrade",
        "created_by": "alice",
    }


def test_end_before_start_is_refused_clearly() -> None:
    err = refused(ends_at=T0 - HOUR)
    assert err.field == "ends_at"
    assert str(err) == (
        "a maintenance window with its end before its start: it would end at "
        "2026-11-28 11:00 UTC but start at 2026-11-28 12:00 UTC"
    )
    assert refused(ends_at=T0).field == "ends_at"  # an empty window too


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"service": "nope"}, "service", "unknown service 'nope'"),
        ({"reason": "  "}, "reason", "needs a reason"),
        ({"by": "mallory"}, "by", "only roster people act"),
        ({"starts_at": T0 - 5 * HOUR, "ends_at": T0 - HOUR}, "ends_at", "already be over"),
        ({"ends_at": T0 + timedelta(days=15)}, "ends_at", "at most 14 days"),
        ({"ends_at": datetime(2026, 11, 28, 14, 0)}, "ends_at", "needs a UTC offset"),
    ],
)
def test_refusals_name_the_field(changes: dict[str, object], field: str, text: str) -> None:
    err = refused(**changes)
    assert err.field == field and text in str(err)


def test_any_service_when_the_policy_names_none() -> None:
    bare = POLICY.model_copy(update={"integrations": (), "runbooks": {}})
    assert new(bare, service="anything").service == "anything"  # type: ignore[attr-defined]


def test_phases_and_an_early_end() -> None:
    w = window()
    assert [w.phase_at(T0 - HOUR), w.phase_at(T0), w.phase_at(T0 + 2 * HOUR)] == [
        "scheduled",
        "active",
        "ended",
    ]
    early = window(ended_at=T0 + HOUR, ended_by="bob")
    assert early.effective_end == T0 + HOUR and early.ended_early
    assert not early.active_at(T0 + HOUR)
    with pytest.raises(MaintenanceRefused, match="already ended early by bob"):
        check_end(early, T0 + HOUR)
    check_end(w, T0 - HOUR)  # a window to come may be cancelled


def test_texts() -> None:
    w = window()
    assert ingest_note(w, T0, opened=True) == (
        "accepted; nobody paged: api is in maintenance until 14:00 UTC (DB upgrade, window 3)"
    )
    assert not_paged_text(w.hold(), T0) == (
        "Not paged: api is in maintenance (DB upgrade, window 3) until 14:00 UTC"
    )
    assert "until 2026-11-28 14:00 UTC" in not_paged_text(w.hold(), T0 - timedelta(days=1))


# ---- "is service X in maintenance at t": a property ---------------------------------------

_minutes = st.integers(min_value=0, max_value=600)


@st.composite
def windows(draw: st.DrawFn) -> MaintenanceWindow:
    start = draw(_minutes)
    length = draw(st.integers(min_value=1, max_value=300))
    ended = draw(st.none() | _minutes)
    return window(
        id=draw(st.integers(min_value=1, max_value=50)),
        service=draw(st.sampled_from(["api", "db"])),
        starts_at=T0 + timedelta(minutes=start),
        ends_at=T0 + timedelta(minutes=start + length),
        ended_at=T0 + timedelta(minutes=ended) if ended is not None else None,
    )


@given(st.lists(windows(), max_size=8), _minutes, st.sampled_from(["api", "db"]))
def test_in_maintenance_is_the_latest_ending_active_window(
    ws: list[MaintenanceWindow], minute: int, service: str
) -> None:
    at = T0 + timedelta(minutes=minute)
    found = in_maintenance(ws, service, at)
    active = [
        w
        for w in ws
        if w.service == service
        and w.starts_at <= at < w.ends_at
        and (w.ended_at is None or at < w.ended_at)
    ]
    if not active:
        assert found is None
        return
    assert found is not None and found in active
    assert all(w.effective_end <= found.effective_end for w in active)
    # The hold it gives lasts as long as every window that covers the service then.
    assert found.hold().until == max(w.effective_end for w in active)


# ---- the incident side: paging held until the window is over ------------------------------


def held_incident(severity: Severity = Severity.P1) -> IncidentState:
    return IncidentState(
        workflow_id="incident/direct/x",
        incident_id="INC-2026-11-28-001",
        dedup_key="x",
        service="api",
        summary="API p99 > 5s",
        severity=severity,
        opened_at=T0,
        ladder=LadderRun(anchor=T0),
        replanned_at=T0,
        paging_hold=PagingHold(window=3, service="api", reason="DB upgrade", until=T0 + 2 * HOUR),
    )


@pytest.mark.parametrize("severity", list(Severity))
def test_a_held_incident_plans_nothing_but_its_release(severity: Severity) -> None:
    state = held_incident(severity)
    effects = transitions.open_incident(state, POLICY, T0)
    assert effects.messages == []  # no #incidents post either
    assert state.timeline[-1].text.startswith("Not paged: api is in maintenance")
    for minute in (0, 30, 119):
        now = T0 + timedelta(minutes=minute)
        current = plan(state, POLICY.for_severity(severity), now)
        assert current.due == []
        assert current.next is not None and current.next.kind == StepKind.PAGING_RELEASE
        assert current.next.at == T0 + 2 * HOUR


def test_the_release_starts_the_ladder_as_for_a_new_incident() -> None:
    state = held_incident()
    transitions.open_incident(state, POLICY, T0)
    end = T0 + 2 * HOUR
    (step,) = plan(state, POLICY.for_severity(Severity.P1), end).due
    effects = transitions.carry_out(step, state, POLICY, None)
    assert state.paging_hold is None and state.replanned_at == end
    assert [m.params.kind for m in effects.messages] == [MessageKind.INITIAL_ALERT]
    assert state.timeline[-1].text == (
        "Maintenance window 3 (DB upgrade) ended: paging starts now, as for a new incident"
    )
    due = plan(state, POLICY.for_severity(Severity.P1), end).due
    assert [s.kind for s in due][:1] == [StepKind.PAGE] and due[0].at == end


def test_a_held_incident_says_nothing_until_released() -> None:
    """Never announced, so neither its diagnostics nor its resolution are posted anywhere:
    both stay on the timeline and the ticket."""
    state = held_incident()
    transitions.open_incident(state, POLICY, T0)
    run = RunbookRun(number=1, reason="incident opened", started_at=T0)
    state.runbook_runs.append(run)
    done = run.model_copy(update={"finished_at": T0 + HOUR})
    effects = diagnostics.finished(state, POLICY, done, T0 + HOUR)
    assert (effects.messages, effects.ticket) == ([], True)
    assert state.timeline[-1].text.startswith("Diagnostics #1 (all passed)")
    state.status, state.resolved_at = Status.RESOLVED, T0 + HOUR
    resolved = transitions.resolution(state, POLICY, review_at=None)
    assert (resolved.messages, resolved.ticket) == ([], True)


def test_nothing_is_posted_to_the_channels_while_held() -> None:
    state = held_incident()
    transitions.open_incident(state, POLICY, T0)
    acked = transitions.acknowledge_from_source(state, POLICY, "pagerduty", T0 + HOUR)
    assert [m.recipient for m in acked.messages] == ["#incidents"]
    assert transitions.quiet_while_held(state, POLICY, acked.messages) == []
    assert state.timeline[-1].text.startswith("Incident acknowledged by pagerduty")
    state.paging_hold = None  # released: the same message goes out
    assert transitions.quiet_while_held(state, POLICY, acked.messages) == acked.messages


def test_escalate_now_releases_a_held_incident() -> None:
    state = held_incident()
    transitions.open_incident(state, POLICY, T0)
    effects = transitions.escalate(state, POLICY, EscalateRequest(by="bob"), T0 + HOUR)
    assert state.paging_hold is None
    assert [m.params.kind for m in effects.messages] == [MessageKind.INITIAL_ALERT]
    assert "ended early by bob" in state.timeline[-2].text


def test_release_of_another_window_or_a_resolved_incident_changes_nothing() -> None:
    state = held_incident()
    state.paging_hold = None
    assert transitions.release_paging(state, POLICY, T0).messages == []
