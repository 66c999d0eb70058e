"""Runbooks as data, diagnostics runs and mitigations behind approval: the pure rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import diagnostics, mitigations, transitions
from domain.escalation import StepKind, plan
from domain.incident import (
    DiagnosticsRequest,
    IncidentState,
    MitigationDecision,
    MitigationRequest,
    Status,
    StatusUpdateRequest,
)
from domain.policy_file import PolicyError, parse_runbook
from domain.runbooks import (
    ActionOutcome,
    CheckResult,
    Outcome,
    ProposalStatus,
    RunbookRun,
    digest,
)
from domain.templates import render_message
from domain.transitions import InvalidTransition
from tests.domain.support import T0, incident, m, policy

# ---- runbook files ---------------------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as err:
        parse_runbook(text, "runbooks/api.yaml")
    assert str(err.value).startswith("runbooks/api.yaml: ")
    return err.value.problems


def test_the_shipped_runbooks_are_the_seeds_four() -> None:
    runbooks = policy().runbooks
    assert sorted(runbooks) == ["api", "database", "frontend", "third-party"]
    assert [c.name for c in runbooks["api"].checks] == [
        "health",
        "db",
        "errors",
        "p99",
        "deploys",
        "mongo",
        "metrics",
    ]
    assert sorted(runbooks["api"].mitigations) == ["clear-cache", "restart", "rollback", "scale-up"]
    assert runbooks["database"].mitigations["failover"].risk == "high"


def test_unknown_step_kind_names_the_field() -> None:
    text = "title: API\nchecks:\n  - {name: health, kind: curl, url: 'https://x.example'}\n"
    (problem,) = problems(text)
    assert problem.startswith("checks.0: Input tag 'curl' found using 'kind' does not match")


def test_bad_url_names_the_field() -> None:
    text = "title: API\nchecks:\n  - {name: health, kind: http, url: 'ftp://x.example/health'}\n"
    assert problems(text) == [
        "checks.0.http.url: Value error, 'ftp://x.example/health' is not an http(s) URL with a host"
    ]


def test_secrets_are_named_not_written() -> None:
    text = (
        "title: API\nmitigations:\n  rollback:\n    title: Roll back\n    http:\n"
        "      url: https://deploy.example/rollback\n"
        "      headers_from_env: {Authorization: 'Bearer abc123'}\n"
    )
    (problem,) = problems(text)
    assert problem.startswith("mitigations.rollback.http.headers_from_env: Value error, ")
    assert "must be the NAME of an environment variable" in problem


def test_a_mitigation_is_one_action_and_checks_have_unique_names() -> None:
    text = "title: API\nmitigations:\n  rollback: {title: Roll back}\n"
    assert problems(text) == [
        "mitigations.rollback: Value error, give exactly one of `http` or `command`"
    ]
    twice = (
        "title: API\nchecks:\n"
        "  - {name: a, kind: manual, text: x}\n"
        "  - {name: a, kind: manual, text: y}\n"
    )
    assert problems(twice) == ["(top level): Value error, checks: duplicate name a"]


def test_prometheus_checks_need_a_threshold() -> None:
    text = "title: API\nchecks:\n  - {name: p99, kind: prometheus, query: up}\n"
    assert problems(text) == [
        "checks.0.prometheus: Value error, give a threshold: `above` or `below`"
    ]


# ---- diagnostics -----------------------------------------------------------------------


def result(name: str, outcome: Outcome, summary: str) -> CheckResult:
    return CheckResult(name=name, kind="http", outcome=outcome, summary=summary)


def test_p0_to_p2_run_diagnostics_when_they_open_p3_does_not() -> None:
    for severity in ("P0", "P1", "P2"):
        state = incident(severity)
        effects = diagnostics.at_open(state, policy(), T0)
        assert effects.runbook_runs == [1]
        assert state.runbook_runs[0].reason == "incident opened"
    p3 = incident("P3")
    assert diagnostics.at_open(p3, policy(), T0).runbook_runs == []
    no_runbook = incident("P1", service="billing")
    assert diagnostics.at_open(no_runbook, policy(), T0).runbook_runs == []


def test_finished_run_goes_to_the_timeline_ticket_and_thread() -> None:
    state = incident("P1")
    diagnostics.at_open(state, policy(), T0)
    run = state.runbook_runs[0].model_copy(
        update={
            "finished_at": T0 + m(1),
            "results": [
                result("health", Outcome.FAILED, "503"),
                result("db", Outcome.OK, "ok (database: up)"),
                CheckResult(name="metrics", kind="manual", outcome=Outcome.MANUAL, summary="Look"),
            ],
        }
    )
    effects = diagnostics.finished(state, policy(), run, T0 + m(1))
    assert effects.ticket
    assert [(o.step, o.recipient) for o in effects.messages] == [("diagnostics:1", "#incidents")]
    assert state.timeline[-1].text == (
        "Diagnostics #1 (1 of 3 not ok): health 503 · db ok (database: up)"
    )
    assert state.latest_diagnostics is not None
    # The same result again (a replayed child completion) changes nothing.
    assert diagnostics.finished(state, policy(), run, T0 + m(2)).messages == []


def test_digest_leaves_manual_items_out() -> None:
    results = [
        result("health", Outcome.ERROR, "unreachable: api.madplan.com"),
        CheckResult(name="vitals", kind="manual", outcome=Outcome.MANUAL, summary="Check"),
    ]
    assert digest(results) == "health unreachable: api.madplan.com"


def test_on_demand_run_checks_people_and_step_names() -> None:
    state = incident("P1")
    effects = diagnostics.request(state, policy(), DiagnosticsRequest(by="carol"), T0)
    assert effects.runbook_runs == [1]
    effects = diagnostics.request(
        state, policy(), DiagnosticsRequest(by="carol", check="health"), T0
    )
    assert state.runbook_runs[-1].checks == ["health"]
    with pytest.raises(InvalidTransition, match="no check 'nope' in the api runbook; checks: "):
        diagnostics.request(state, policy(), DiagnosticsRequest(by="carol", check="nope"), T0)
    with pytest.raises(InvalidTransition, match="'mallory' is not on the roster"):
        diagnostics.request(state, policy(), DiagnosticsRequest(by="mallory"), T0)
    billing = incident("P1", service="billing")
    with pytest.raises(InvalidTransition, match="no runbook for service 'billing'"):
        diagnostics.request(billing, policy(), DiagnosticsRequest(by="carol"), T0)


# ---- mitigations -----------------------------------------------------------------------


def propose(state: IncidentState, action: str = "rollback", by: str = "carol") -> None:
    mitigations.propose(state, policy(), MitigationRequest(by=by, action=action), T0)


def test_high_risk_needs_another_person() -> None:
    state = incident("P1")
    effects = mitigations.propose(
        state, policy(), MitigationRequest(by="carol", action="rollback"), T0
    )
    assert effects.mitigations == []  # waiting for approval
    assert state.status == Status.INVESTIGATING  # proposing acknowledges
    proposal = state.mitigations[0]
    assert proposal.status == ProposalStatus.PROPOSED
    assert proposal.expires_at == T0 + timedelta(minutes=30)
    with pytest.raises(InvalidTransition, match="another person must approve it"):
        mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0 + m(1))
    assert proposal.status == ProposalStatus.PROPOSED  # the refusal changed nothing
    effects = mitigations.decide(
        state, policy(), MitigationDecision(by="dave", proposal=1), T0 + m(2)
    )
    assert effects.mitigations == [1]
    assert proposal.status == ProposalStatus.RUNNING
    assert proposal.decided_by == "dave"
    assert state.status == Status.MITIGATING


def test_medium_risk_may_be_confirmed_by_the_proposer() -> None:
    state = incident("P1")
    propose(state, "restart")
    effects = mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0)
    assert effects.mitigations == [1]


def test_refusals_change_nothing() -> None:
    state = incident("P1")
    with pytest.raises(InvalidTransition, match="'reboot' is not a mitigation for api; defined: "):
        propose(state, "reboot")
    with pytest.raises(InvalidTransition, match="'mallory' is not on the roster"):
        propose(state, by="mallory")
    assert state.mitigations == []
    propose(state)
    with pytest.raises(InvalidTransition, match="rollback is already proposed"):
        propose(state, by="dave")
    with pytest.raises(InvalidTransition, match="there is no mitigation proposal #7"):
        mitigations.decide(state, policy(), MitigationDecision(by="dave", proposal=7), T0)
    late = T0 + timedelta(minutes=30)
    with pytest.raises(InvalidTransition, match="proposal #1 \\(rollback\\) has expired"):
        mitigations.decide(state, policy(), MitigationDecision(by="dave", proposal=1), late)
    mitigations.decide(
        state, policy(), MitigationDecision(by="dave", proposal=1, approve=False), T0 + m(1)
    )
    with pytest.raises(InvalidTransition, match="is already declined"):
        mitigations.decide(state, policy(), MitigationDecision(by="erin", proposal=1), T0 + m(2))


def test_no_mitigation_on_a_resolved_incident() -> None:
    state = incident("P1", status=Status.RESOLVED, resolved_at=T0)
    with pytest.raises(InvalidTransition, match="already resolved"):
        propose(state)


def test_expiry_is_a_planned_step() -> None:
    state = incident("P1")
    propose(state)
    steps = plan(state, policy().for_severity(state.severity), T0 + timedelta(minutes=30)).due
    expiry = [s for s in steps if s.kind == StepKind.PROPOSAL_EXPIRY]
    assert [(s.key, s.proposal, s.at) for s in expiry] == [
        ("expire:1", 1, T0 + timedelta(minutes=30))
    ]
    effects = mitigations.expire(state, policy(), 1, T0 + timedelta(minutes=30))
    assert state.mitigations[0].status == ProposalStatus.EXPIRED
    assert [o.step for o in effects.messages] == ["mitigation:1:expired"]
    assert mitigations.expire(state, policy(), 1, T0 + timedelta(minutes=31)).messages == []


def test_a_success_is_verified_by_running_the_diagnostics_again() -> None:
    state = incident("P1")
    propose(state)
    mitigations.decide(state, policy(), MitigationDecision(by="dave", proposal=1), T0 + m(1))
    outcome = ActionOutcome(status="succeeded", summary="202 Accepted", response_status=202)
    effects = mitigations.finished(state, policy(), 1, outcome, T0 + m(2))
    assert effects.runbook_runs == [1]
    run = state.runbook_runs[-1]
    assert (run.reason, run.verifies) == ("verify rollback", 1)
    assert state.mitigations[0].verify_run == 1
    assert state.mitigated_at == T0 + m(2)
    passed = run.model_copy(
        update={"finished_at": T0 + m(3), "results": [result("health", Outcome.OK, "ok 80ms")]}
    )
    diagnostics.finished(state, policy(), passed, T0 + m(3))
    assert state.timeline[-1].text == "Verification after rollback passed: consider resolving"
    assert state.is_open  # it never resolves by itself


def test_a_failure_is_recorded_and_not_verified() -> None:
    state = incident("P1")
    propose(state, "restart")
    mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0)
    outcome = ActionOutcome(status="failed", summary="500 Internal Server Error")
    effects = mitigations.finished(state, policy(), 1, outcome, T0 + m(1))
    assert effects.runbook_runs == []
    assert state.mitigations[0].status == ProposalStatus.FAILED
    # Nothing is mitigating the incident any more: back to Investigating, and said so.
    assert state.status == Status.INVESTIGATING
    assert [e.text for e in state.timeline[-2:]] == [
        "#1 restart failed: 500 Internal Server Error",
        "Status → Investigating (mitigation #1 restart failed)",
    ]
    [announced] = effects.messages
    rendered = render_message(announced.params, state, policy(), T0 + m(1))
    assert "Mitigation #1 restart failed -" in rendered.subject


def two_running() -> IncidentState:
    """Two approved actions running (#1 restart, #2 clear-cache)."""
    state = incident("P1")
    propose(state, "restart")
    propose(state, "clear-cache")
    mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0)
    mitigations.decide(state, policy(), MitigationDecision(by="dave", proposal=2), T0)
    assert [p.status for p in state.mitigations] == [ProposalStatus.RUNNING] * 2
    return state


def test_a_failure_beside_a_running_mitigation_stays_mitigating() -> None:
    state = two_running()
    outcome = ActionOutcome(status="failed", summary="500 Internal Server Error")
    mitigations.finished(state, policy(), 1, outcome, T0 + m(1))
    assert state.status == Status.MITIGATING  # #2 is still running


def test_a_failure_after_a_person_said_mitigating_stays_mitigating() -> None:
    state = incident("P1")
    propose(state, "restart")
    mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0)
    said = StatusUpdateRequest(by="carol", message="Failing over", status=Status.MITIGATING)
    transitions.post_update(state, policy(), said, T0 + m(1))
    assert state.mitigated_at == T0 + m(1)
    outcome = ActionOutcome(status="failed", summary="500 Internal Server Error")
    mitigations.finished(state, policy(), 1, outcome, T0 + m(2))
    assert state.status == Status.MITIGATING


def test_a_failure_beside_an_unknown_outcome_stays_mitigating() -> None:
    state = two_running()
    unknown = ActionOutcome(status="unknown", summary="killed")
    mitigations.finished(state, policy(), 1, unknown, T0 + m(1))
    failed = ActionOutcome(status="failed", summary="500 Internal Server Error")
    mitigations.finished(state, policy(), 2, failed, T0 + m(2))
    assert state.status == Status.MITIGATING  # #1 may have done it


@pytest.mark.parametrize(
    ("status", "said"), [("succeeded", "succeeded"), ("unknown", "outcome unknown")]
)
def test_the_subject_says_how_a_mitigation_ended(status: str, said: str) -> None:
    state = incident("P1")
    propose(state, "restart")
    mitigations.decide(state, policy(), MitigationDecision(by="carol", proposal=1), T0)
    outcome = ActionOutcome.model_validate({"status": status, "summary": "x"})
    effects = mitigations.finished(state, policy(), 1, outcome, T0 + m(1))
    rendered = render_message(effects.messages[0].params, state, policy(), T0 + m(1))
    assert f"Mitigation #1 restart {said} -" in rendered.subject
    assert state.status == Status.MITIGATING


# A random sequence of proposals and decisions by random people: a high-risk action never
# runs unless someone other than its proposer approved it, and never runs twice.
people = st.sampled_from(["alice", "bob", "carol", "dave", "mallory"])
actions = st.sampled_from(["rollback", "restart", "clear-cache", "scale-up", "reboot"])
moves = st.lists(
    st.one_of(
        st.tuples(st.just("propose"), people, actions, st.integers(0, 40)),
        st.tuples(st.just("decide"), people, st.integers(1, 4), st.booleans(), st.integers(0, 40)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(moves)
def test_property_two_person_rule_and_once_only(sequence: list[tuple[object, ...]]) -> None:
    state = incident("P1")
    started: list[int] = []
    for move in sequence:
        try:
            if move[0] == "propose":
                _, by, action, minute = move
                effects = mitigations.propose(
                    state,
                    policy(),
                    MitigationRequest(by=str(by), action=str(action)),
                    T0 + m(int(str(minute))),
                )
            else:
                _, by, number, approve, minute = move
                decision = MitigationDecision(
                    by=str(by), proposal=int(str(number)), approve=bool(approve)
                )
                effects = mitigations.decide(state, policy(), decision, T0 + m(int(str(minute))))
        except InvalidTransition:
            continue
        started += effects.mitigations
    assert len(started) == len(set(started))
    for number in started:
        proposal = state.proposal(number)
        assert proposal is not None
        if proposal.risk == "high":
            assert proposal.decided_by is not None
            assert proposal.decided_by != proposal.proposed_by
        if proposal.risk != "low":
            assert proposal.decided_by is not None


def test_runbook_run_passed_ignores_manual_items() -> None:
    run = RunbookRun(
        number=1,
        reason="x",
        started_at=T0,
        results=[
            result("a", Outcome.OK, "ok"),
            CheckResult(name="b", kind="manual", outcome=Outcome.MANUAL, summary="look"),
        ],
    )
    assert run.passed
