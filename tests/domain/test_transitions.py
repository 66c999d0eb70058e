"""Incident transitions without Temporal: each action's new state and effects, and refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from domain import transitions as t
from domain.escalation import Step, StepKind, plan
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    EscalateRequest,
    IncidentState,
    LadderRun,
    ResolveRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
)
from domain.messages import (
    AcknowledgedMessage,
    EscalatedMessage,
    MessageKind,
    PageMessage,
    SeverityChangedMessage,
    StatusUpdateMessage,
)
from domain.policy import Person, Role, Severity
from tests.domain.support import T0, incident, m, policy


def person(name: str) -> Person:
    found = policy().roster.person(name)
    assert found is not None
    return found


def opened(severity: str = "P1") -> IncidentState:
    state = incident(severity)
    t.open_incident(state, policy(), T0)
    return state


def paged(state: IncidentState, name: str, level: int, at: datetime) -> None:
    step = Step(
        key=f"page:e0:l0:{level}",
        at=at,
        kind=StepKind.PAGE,
        role=policy().for_severity(state.severity).ladder[level].target,
        level=level,
        loop=0,
    )
    t.carry_out(step, state, policy(), person(name))


def test_opening_posts_the_initial_alert_and_writes_the_ticket() -> None:
    state = IncidentState(
        workflow_id="w",
        incident_id="INC-2026-11-26-001",
        dedup_key="k",
        service="api",
        summary="down",
        severity=Severity.P3,
        opened_at=T0,
        ladder=LadderRun(anchor=T0),
        replanned_at=T0,
    )
    fx = t.open_incident(state, policy(), T0)
    assert [(o.recipient, o.params.kind) for o in fx.messages] == [
        ("#incidents", MessageKind.INITIAL_ALERT)
    ]
    assert fx.ticket and fx.review  # P3: the next-business-day review needs a date
    assert [e.kind for e in state.timeline] == ["opened"]


def test_a_page_records_the_page_and_makes_the_paged_person_the_assignee() -> None:
    state = opened("P1")
    step = Step(key="page:e0:l0:1", at=T0 + m(15), kind=StepKind.PAGE, role=Role.SECONDARY, level=1)
    fx = t.carry_out(step, state, policy(), person("dave"))
    [out] = fx.messages
    assert out.params == PageMessage(person="dave", role=Role.SECONDARY, level=2, window=m(30))
    assert (out.recipient, out.due, out.step) == ("dave", T0 + m(15), "page:e0:l0:1")
    assert state.assignee == "dave" and [p.person for p in state.pages] == ["dave"]
    assert state.timeline[-1].text == "Paged Dave Dahl (Secondary On-Call, level 2)"


def test_acknowledge_owns_the_incident_once() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    fx = t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(3))
    assert state.status == Status.INVESTIGATING
    assert (state.acknowledged_by, state.assignee, state.assignee_level) == ("carol", "carol", 0)
    assert state.responders == ["carol"]
    assert [o.params for o in fx.messages] == [AcknowledgedMessage(by="carol")]
    assert fx.ticket
    # A second click changes nothing and says nothing.
    again = t.acknowledge(state, policy(), AcknowledgeRequest(by="dave"), T0 + m(4))
    assert again.messages == [] and state.acknowledged_by == "carol"
    # Acknowledged: the ladder pages nobody else.
    assert [
        s
        for s in plan(state, policy().for_severity(Severity.P1), T0 + m(200)).due
        if s.kind == StepKind.PAGE
    ] == []


@pytest.mark.parametrize(
    ("holds", "placed"),
    [
        ({0: "carol", 1: "dave", 2: "erin", 3: "frank"}, 1),  # the secondary
        ({0: "carol", 1: "bob", 2: "dave", 3: "frank"}, 2),  # the team lead
        ({0: "carol", 1: "dave", 2: "dave", 3: "frank"}, 2),  # both: the higher
        ({0: "carol", 1: "bob", 2: "erin", 3: "frank"}, 0),  # none: as far as paged
    ],
)
def test_an_ack_by_someone_not_paged_places_them_on_the_ladder(
    holds: dict[int, str], placed: int
) -> None:
    """Escalate and overdue reports go above the assignee: one the ladder never paged is at
    the level they hold, or at least as far up as the ladder had gone."""
    state = opened("P1")
    paged(state, "carol", 0, T0)
    fx = t.acknowledge(state, policy(), AcknowledgeRequest(by="dave"), T0 + m(3))
    assert fx.place_assignee and state.assignee_level == 0  # until the holders are known
    t.place_assignee(state, holds)
    assert state.assignee_level == placed


def test_an_ack_by_the_paged_person_needs_no_lookup() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    fx = t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(3))
    assert not fx.place_assignee


@pytest.mark.parametrize(
    ("effects", "local", "written_ago", "due"),
    [
        (t.Effects(ticket=True), False, m(1), True),  # an action or the resolution: always
        (t.Effects(), False, None, False),  # nothing changed the ticket
        (t.Effects(paged=True), True, m(1), True),  # one local write with the page: free
        (t.Effects(paged=True), False, None, True),  # never written yet
        (t.Effects(paged=True), False, m(4), False),  # a storm's steps: not every one
        (t.Effects(paged=True), False, m(5), True),  # a 15-minute ladder: every page
    ],
)
def test_a_ladder_page_rewrites_the_ticket_at_most_every_five_minutes_with_real_channels(
    effects: t.Effects, local: bool, written_ago: timedelta | None, due: bool
) -> None:
    state = opened("P1")
    state.local_delivery = local
    now = T0 + m(30)
    state.ticket_written_at = now - written_ago if written_ago is not None else None
    assert t.ticket_due(state, effects, now) is due
    assert m(5) == t.TICKET_AFTER_PAGES


def test_first_update_acknowledges_mitigates_and_informs_stakeholders() -> None:
    state = opened("P1")
    req = StatusUpdateRequest(by="carol", message="Rolled back 412", status=Status.MITIGATING)
    fx = t.post_update(state, policy(), req, T0 + m(10))
    assert state.status == Status.MITIGATING and state.acknowledged_by == "carol"
    assert state.mitigated_at == state.last_update_at == T0 + m(10)
    assert state.stakeholders_informed_at == T0 + m(10)  # a human update meets the deadline
    update = StatusUpdateMessage(by="carol", message="Rolled back 412")
    assert [(o.recipient, o.params) for o in fx.messages] == [
        ("#incidents", AcknowledgedMessage(by="carol")),
        ("#incidents", update),
        ("#stakeholders", update),
    ]
    kinds = [e.kind for e in state.timeline]
    assert kinds[-4:] == ["status", "mitigation", "status", "update"]


def test_severity_change_replans_from_now_under_a_new_epoch() -> None:
    state = opened("P2")
    fx = t.change_severity(
        state, policy(), SeverityChangeRequest(by="carol", severity=Severity.P0), T0 + m(20)
    )
    assert state.severity == Severity.P0 and state.replanned_at == T0 + m(20)
    assert state.ladder == LadderRun(epoch=1, anchor=T0 + m(20), start_level=0)
    assert [o.params for o in fx.messages] == [SeverityChangedMessage(old=Severity.P2, by="carol")]


def test_a_change_to_the_same_severity_is_refused() -> None:
    state = opened("P1")
    before = state.model_copy(deep=True)
    with pytest.raises(t.InvalidTransition, match=r"^INC-2026-11-26-001 is already P1$"):
        t.change_severity(
            state, policy(), SeverityChangeRequest(by="carol", severity=Severity.P1), T0
        )
    assert state == before


def test_escalate_unacknowledged_restarts_the_ladder_at_the_next_level() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    fx = t.escalate(state, policy(), EscalateRequest(by="carol", reason="need a DBA"), T0 + m(5))
    assert fx.pages == [] and state.ladder == LadderRun(epoch=1, anchor=T0 + m(5), start_level=1)
    assert state.timeline[-1].text == "Escalated now to Secondary On-Call: need a DBA"


@pytest.mark.parametrize("acknowledged", [False, True])
def test_escalate_at_the_last_level_is_refused_and_says_what_to_do(acknowledged: bool) -> None:
    state = opened("P1")
    top = len(policy().for_severity(Severity.P1).ladder) - 1
    paged(state, "frank", top, T0)
    if acknowledged:
        t.acknowledge(state, policy(), AcknowledgeRequest(by="frank"), T0 + m(2))
    before = state.model_copy(deep=True)
    with pytest.raises(t.InvalidTransition) as refused:
        t.escalate(state, policy(), EscalateRequest(by="carol"), T0 + m(5))
    assert str(refused.value) == (
        "INC-2026-11-26-001 is at the last level of the P1 ladder (Engineering Manager):"
        " there is nobody above to escalate to; add a responder to bring someone in"
    )
    assert state == before  # not back to the primary, and nothing logged


def test_escalating_an_acknowledged_incident_climbs_past_its_own_pages() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(2))
    levels = []
    for minute in (5, 6, 7):
        [page] = t.escalate(state, policy(), EscalateRequest(by="carol"), T0 + m(minute)).pages
        t.direct_page(state, policy(), page, person("frank"), T0 + m(minute))
        levels.append(page.level)
    assert levels == [1, 2, 3]  # not level 1 again and again
    with pytest.raises(t.InvalidTransition, match="last level of the P1 ladder"):
        t.escalate(state, policy(), EscalateRequest(by="carol"), T0 + m(8))


def test_escalate_after_a_severity_change_counts_the_new_ladder_only() -> None:
    state = opened("P2")
    top = len(policy().for_severity(Severity.P2).ladder) - 1
    paged(state, "frank", top, T0)  # the old ladder's last level
    t.change_severity(
        state, policy(), SeverityChangeRequest(by="carol", severity=Severity.P1), T0 + m(1)
    )
    t.escalate(state, policy(), EscalateRequest(by="carol"), T0 + m(1))  # nothing paged yet
    assert state.ladder.start_level == 1  # one above the level the new ladder pages first
    assert state.timeline[-1].text == "Escalated now to Secondary On-Call"


def test_escalate_acknowledged_pages_the_level_above_the_assignee() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(2))
    fx = t.escalate(state, policy(), EscalateRequest(by="carol", reason="need a DBA"), T0 + m(5))
    [page] = fx.pages
    assert (page.role, page.level, page.by, page.reason) == (
        Role.SECONDARY,
        1,
        "carol",
        "need a DBA",
    )
    done = t.direct_page(state, policy(), page, person("dave"), T0 + m(5))
    assert [o.params for o in done.messages] == [
        EscalatedMessage(person="dave", role=Role.SECONDARY, by="carol", reason="need a DBA")
    ]
    assert state.assignee == "carol"  # escalating adds help; it does not hand the incident over


def test_add_responder_tells_them_once() -> None:
    state = opened("P1")
    fx = t.add_responder(state, policy(), AddResponderRequest(by="carol", person="dave"), T0)
    assert [(o.recipient, o.params.kind) for o in fx.messages] == [
        ("dave", MessageKind.RESPONDER_ADDED)
    ]
    assert not t.add_responder(
        state, policy(), AddResponderRequest(by="carol", person="dave"), T0
    ).messages


def test_resolve_and_then_nothing_more() -> None:
    state = opened("P1")
    req = ResolveRequest(
        by="carol", root_cause="Pool exhausted", fix="Raised it", false_positive=True
    )
    fx = t.resolve(state, policy(), req, T0 + m(30))
    assert fx.ticket and not state.is_open and state.false_positive
    assert state.timeline[-1].text == "Issue resolved by Carol Christensen (false positive)"
    with pytest.raises(t.InvalidTransition, match="already resolved"):
        t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(31))
    assert t.resolve_from_source(state, policy(), "grafana", T0 + m(32)).messages == []


@pytest.mark.parametrize(
    "action",
    [
        lambda s: t.acknowledge(s, policy(), AcknowledgeRequest(by="mallory"), T0),
        lambda s: t.post_update(s, policy(), StatusUpdateRequest(by="mallory", message="hi"), T0),
        lambda s: t.resolve(s, policy(), ResolveRequest(by="mallory", root_cause="x", fix="y"), T0),
        lambda s: t.add_responder(
            s, policy(), AddResponderRequest(by="carol", person="mallory"), T0
        ),
    ],
)
def test_only_roster_people_act_and_a_refusal_changes_nothing(
    action: Callable[[IncidentState], t.Effects],
) -> None:
    state = opened("P1")
    before = state.model_copy(deep=True)
    with pytest.raises(t.InvalidTransition, match="'mallory' is not on the roster"):
        action(state)
    assert state == before


def test_p3_has_no_ladder_to_escalate() -> None:
    state = opened("P3")
    with pytest.raises(t.InvalidTransition, match="P3 has no escalation ladder"):
        t.escalate(state, policy(), EscalateRequest(by="carol"), T0)


def test_source_acknowledgement_is_attributed_to_the_integration() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    fx = t.acknowledge_from_source(state, policy(), "pagerduty-api", T0 + m(1))
    assert state.acknowledged_by == "pagerduty-api" and state.status == Status.INVESTIGATING
    assert state.responders == []  # an integration is nobody to page
    assert [o.params for o in fx.messages] == [AcknowledgedMessage(by="pagerduty-api")]
    # As in PagerDuty, the paged person keeps the incident: a machine is nobody to remind.
    assert (state.assignee, state.assignee_level) == ("carol", 0)
    reminder = Step(key="remind:x:0", at=T0 + m(16), kind=StepKind.UPDATE_REMINDER)
    assert t.person_needed(reminder, state, policy()) is None
    fx = t.carry_out(reminder, state, policy(), None)
    assert [(o.recipient, o.params.kind) for o in fx.messages] == [
        ("carol", MessageKind.UPDATE_REMINDER)
    ]


def test_a_reminder_without_a_human_assignee_goes_to_the_primary() -> None:
    state = opened("P1")  # acknowledged by the tool before anyone was paged
    t.acknowledge_from_source(state, policy(), "pagerduty-api", T0 + m(1))
    assert state.assignee is None
    reminder = Step(key="remind:x:0", at=T0 + m(16), kind=StepKind.UPDATE_REMINDER)
    assert t.person_needed(reminder, state, policy()) == Role.PRIMARY
    fx = t.carry_out(reminder, state, policy(), person("alice"))
    assert [(o.recipient, o.params.kind) for o in fx.messages] == [
        ("alice", MessageKind.UPDATE_REMINDER)
    ]
    assert state.timeline[-1].text == (
        "Status update reminder sent to Alice Andersen (Primary On-Call: nobody holds the incident)"
    )


def test_overdue_updates_go_one_level_above_the_assignee() -> None:
    state = opened("P1")
    paged(state, "carol", 0, T0)
    t.acknowledge(state, policy(), AcknowledgeRequest(by="carol"), T0 + m(1))
    step = Step(key="overdue:x:0", at=T0 + m(31), kind=StepKind.UPDATE_OVERDUE)
    assert t.person_needed(step, state, policy()) == Role.SECONDARY
    fx = t.carry_out(step, state, policy(), person("dave"))
    assert [(o.recipient, o.params.kind) for o in fx.messages] == [
        ("dave", MessageKind.UPDATE_OVERDUE)
    ]


# ---- the ticket's fields ------------------------------------------------------------------


def test_a_ticket_edit_sets_only_the_fields_given_and_says_who() -> None:
    from domain.incident import DetectionMethod, TicketEdit

    st = incident()
    first = TicketEdit(by="bob", user_impact="Checkout slow", data_loss=False)
    assert t.edit_ticket(st, policy(), first, T0 + m(5)).ticket
    second = TicketEdit(by="carol", detection_method=DetectionMethod.USER_REPORT)
    t.edit_ticket(st, policy(), second, T0 + m(9))
    assert (st.ticket.user_impact, st.ticket.data_loss) == ("Checkout slow", False)
    assert st.ticket.detection_method == DetectionMethod.USER_REPORT
    assert [(e.text, e.by) for e in st.timeline if e.kind == "ticket"] == [
        ("Ticket: user impact, data loss set by Bob Berg", "bob"),
        ("Ticket: detection method set by Carol Christensen", "carol"),
    ]


def test_a_ticket_edit_after_the_resolution_is_accepted_but_not_from_strangers() -> None:
    from domain.incident import ResolveRequest, TicketEdit

    st = incident()
    t.resolve(st, policy(), ResolveRequest(by="bob", root_cause="pool", fix="bigger"), T0 + m(30))
    t.edit_ticket(st, policy(), TicketEdit(by="bob", what_went_well="Fast rollback"), T0 + m(40))
    assert st.ticket.what_went_well == "Fast rollback"
    before = st.model_copy(deep=True)
    with pytest.raises(t.InvalidTransition, match="'zed' is not on the roster"):
        t.edit_ticket(st, policy(), TicketEdit(by="zed", workaround="x"), T0 + m(41))
    with pytest.raises(t.InvalidTransition, match="say which ticket fields"):
        t.edit_ticket(st, policy(), TicketEdit(by="bob"), T0 + m(42))
    assert st == before


def test_an_update_keeps_its_next_steps_and_eta_until_a_later_one_changes_them() -> None:
    from domain.incident import StatusUpdateRequest

    st = incident()
    t.post_update(
        st, policy(), StatusUpdateRequest(by="bob", message="a", next_steps="n", eta="e"), T0
    )
    effects = t.post_update(st, policy(), StatusUpdateRequest(by="bob", message="b"), T0 + m(5))
    sent = effects.messages[-1].params
    assert (st.next_steps, st.eta) == ("n", "e")
    assert (sent.next_steps, sent.eta) == ("n", "e")


def test_edits_after_closing_are_laid_over_the_final_state_without_changing_it() -> None:
    from domain.incident import TicketEdit

    final = incident()
    edits = [
        (T0 + m(60), TicketEdit(by="carol", user_impact="none", data_loss=False)),
        (T0 + m(90), TicketEdit(by="bob", user_impact="a few users")),
    ]
    shown = t.with_closed_edits(final, policy(), edits)
    assert (shown.ticket.user_impact, shown.ticket.data_loss) == ("a few users", False)
    assert [e.at for e in shown.timeline if e.kind == "ticket"] == [T0 + m(60), T0 + m(90)]
    assert final.ticket.user_impact is None and t.with_closed_edits(final, policy(), []) is final
