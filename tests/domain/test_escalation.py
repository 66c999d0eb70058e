"""``plan()`` without Temporal: table tests of what is due when, and properties over any history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.escalation import Step, StepKind, plan
from domain.incident import IncidentState, LadderRun, Status
from domain.policy import Role, Severity, SeverityPolicy
from tests.domain.support import T0, incident, m, policy


def sp(severity: str) -> SeverityPolicy:
    return policy().for_severity(Severity(severity))


def run_until(state: IncidentState, until: datetime, since: datetime | None = None) -> list[Step]:
    """Carry out every step from ``since`` (default: the opening) up to ``until`` the way the
    workflow does: due steps fire once, their keys are kept, and keys the plan no longer
    produces are forgotten."""
    fired: list[Step] = []
    now = since or state.opened_at
    while True:
        current = plan(state, sp(state.severity.value), now)
        for step in current.due:
            fired.append(step)
            state.fired.append(step.key)
        if current.due:
            state.fired = [key for key in state.fired if key in current.live_keys]
        if current.next is None or current.next.at > until:
            return fired
        now = current.next.at


def offsets(steps: list[Step], kind: StepKind) -> list[tuple[timedelta, Role | None]]:
    return [(s.at - T0, s.role) for s in steps if s.kind == kind]


# ---- the ladder ---------------------------------------------------------------------------


def test_p1_ladder_pages_each_level_after_the_previous_window_then_repeats() -> None:
    steps = run_until(incident("P1"), T0 + m(600))
    assert offsets(steps, StepKind.PAGE) == [
        (m(0), Role.PRIMARY),
        (m(15), Role.SECONDARY),
        (m(45), Role.TEAM_LEAD),
        (m(90), Role.ENGINEERING_MANAGER),
        (m(150), Role.PRIMARY),  # second pass (loops: 2)
        (m(165), Role.SECONDARY),
        (m(195), Role.TEAM_LEAD),
        (m(240), Role.ENGINEERING_MANAGER),
    ]
    assert [(s.at - T0, s.loop) for s in steps if s.kind == StepKind.LADDER_REPEAT] == [(m(150), 1)]
    assert [s.at - T0 for s in steps if s.kind == StepKind.LADDER_EXHAUSTED] == [m(300)]


def test_p0_informs_management_at_open_and_p3_has_no_ladder() -> None:
    p0 = run_until(incident("P0"), T0)
    assert {(s.kind, s.role) for s in p0 if s.at == T0} >= {
        (StepKind.INFORM, Role.TEAM_LEAD),
        (StepKind.INFORM, Role.ENGINEERING_MANAGER),
        (StepKind.PAGE, Role.PRIMARY),
    }
    assert offsets(run_until(incident("P3"), T0 + m(60 * 24 * 7)), StepKind.PAGE) == []


def test_an_acknowledged_incident_pages_nobody_else() -> None:
    state = incident("P1", status=Status.INVESTIGATING, acknowledged_at=T0 + m(5), fired=[])
    state.fired = ["page:e0:l0:0"]
    steps = run_until(state, T0 + m(300))
    assert offsets(steps, StepKind.PAGE) == []


def test_severity_change_replans_the_ladder_under_a_new_epoch() -> None:
    state = incident("P2")
    run_until(state, T0 + m(30))
    assert "page:e0:l0:0" in state.fired
    changed = T0 + m(30)
    state.severity = Severity.P1
    state.replanned_at = changed
    state.ladder = LadderRun(epoch=1, anchor=changed)
    now = changed
    current = plan(state, sp("P1"), now)
    pages = [s for s in current.due if s.kind == StepKind.PAGE]
    assert [(s.key, s.role) for s in pages] == [("page:e1:l0:0", Role.PRIMARY)]
    # The old epoch's keys are no longer live: the workflow forgets them.
    assert "page:e0:l0:0" not in current.live_keys


def test_escalate_now_starts_the_ladder_at_the_next_level() -> None:
    state = incident("P1")
    state.fired = ["page:e0:l0:0"]
    now = T0 + m(3)
    state.ladder = LadderRun(epoch=1, anchor=now, start_level=1)
    current = plan(state, sp("P1"), now)
    assert [(s.key, s.role) for s in current.due if s.kind == StepKind.PAGE] == [
        ("page:e1:l0:1", Role.SECONDARY)
    ]
    assert current.next is not None and current.next.at == now + m(30)
    assert current.next.role == Role.TEAM_LEAD


# ---- cadence and no-progress --------------------------------------------------------------


def acked(severity: str, at: timedelta, **changes: object) -> IncidentState:
    fields: dict[str, object] = {
        "status": Status.INVESTIGATING,
        "acknowledged_at": T0 + at,
        "acknowledged_by": "carol",
        "assignee": "carol",
    }
    state = incident(severity, **(fields | changes))
    state.fired = ["page:e0:l0:0"]
    return state


def test_cadence_after_downtime_sends_only_the_current_period() -> None:
    state = acked("P1", m(0))
    # The worker was down for 100 minutes: the plan offers the current period's steps only.
    current = plan(state, sp("P1"), T0 + m(100))
    updates = (StepKind.UPDATE_REMINDER, StepKind.UPDATE_OVERDUE)
    kinds = [(s.kind, s.at - T0) for s in current.due if s.kind in updates]
    assert kinds == [(StepKind.UPDATE_OVERDUE, m(90))]
    assert current.next is not None and current.next.at == T0 + m(105)


@pytest.mark.parametrize(
    ("severity", "progress", "expected"),
    [
        # (severity, progress after the ack at +0, no-progress pages as offsets from open)
        ("P1", [], [m(60)]),
        ("P1", [m(20)], [m(80)]),  # an update restarts the clock
        ("P1", [m(20), m(90)], [m(80), m(150)]),  # ... after the page fired, too: standing rule
        ("P1", [m(20), m(50)], [m(110)]),  # progress before the hour: only the last counts
        ("P2", [], [m(240)]),
        ("P2", [m(60)], [m(300)]),
    ],
)
def test_no_progress_re_arms_after_every_piece_of_progress(
    severity: str, progress: list[timedelta], expected: list[timedelta]
) -> None:
    state = acked(severity, m(0))
    fired: list[Step] = []
    since = T0
    for at in [*progress, m(24 * 60)]:
        fired += run_until(state, T0 + at - timedelta(seconds=1), since)
        state.last_update_at = since = T0 + at
    times = sorted({s.at - T0 for s in fired if s.kind == StepKind.NO_PROGRESS})
    assert times == expected
    roles = {s.role for s in fired if s.kind == StepKind.NO_PROGRESS}
    assert roles == {Role.TEAM_LEAD, Role.ENGINEERING_MANAGER}


def test_mitigation_counts_as_progress() -> None:
    state = acked("P1", m(0), status=Status.MITIGATING, mitigated_at=T0 + m(30))
    steps = run_until(state, T0 + m(200))
    assert sorted({s.at - T0 for s in steps if s.kind == StepKind.NO_PROGRESS}) == [m(90)]


def test_a_resolved_incident_plans_nothing() -> None:
    state = incident("P1", status=Status.RESOLVED, resolved_at=T0 + m(1))
    current = plan(state, sp("P1"), T0 + m(500))
    assert current.due == [] and current.next is None


# ---- properties -------------------------------------------------------------------------------

actions = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=600),  # minutes after the previous action
        st.sampled_from(["ack", "update", "mitigate", "none"]),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(severity=st.sampled_from(["P0", "P1", "P2", "P3"]), script=actions)
def test_plan_properties_over_any_history(severity: str, script: list[tuple[int, str]]) -> None:
    state = incident(severity)
    fired: list[Step] = []
    at = T0
    for gap, action in script:
        fired += run_until(state, at + m(gap) - timedelta(seconds=1), at)
        at += m(gap)
        if action == "ack" and state.acknowledged_at is None:
            state.acknowledged_at, state.status = at, Status.INVESTIGATING
        elif action in ("update", "mitigate") and state.acknowledged_at is not None:
            state.last_update_at = at
            if action == "mitigate":
                state.status, state.mitigated_at = Status.MITIGATING, at
    fired += run_until(state, at + m(3 * 24 * 60), at)

    keys = [s.key for s in fired]
    assert len(keys) == len(set(keys)), "a step key fired twice"
    assert all(s.at >= state.opened_at for s in fired), "a step was due before the incident"
    for epoch_loop in {(s.key.split(":")[1], s.loop) for s in fired if s.kind == StepKind.PAGE}:
        run = [
            s
            for s in fired
            if s.kind == StepKind.PAGE and (s.key.split(":")[1], s.loop) == epoch_loop
        ]
        assert [s.at for s in run] == sorted(s.at for s in run)
        assert [s.level for s in run] == sorted(s.level or 0 for s in run)
    if state.acknowledged_at is not None:
        late_pages = [s for s in fired if s.kind == StepKind.PAGE and s.at > state.acknowledged_at]
        assert late_pages == [], "paged after the acknowledgement"
