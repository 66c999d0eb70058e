"""How runbook results and mitigations read: lines for the thread, the ticket and pages.

Pure text from state (``domain.templates`` puts the lines into its templates), so that the
golden-text tests see exactly what responders see.
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain.incident import IncidentState
from domain.policy import Policy
from domain.runbooks import (
    CheckResult,
    MitigationProposal,
    Outcome,
    ProposalStatus,
    Risk,
    Runbook,
    RunbookRun,
    digest,
)

DIGEST_MAX = 300  # a page is read on a phone

_MARKS = {Outcome.OK: "✅", Outcome.FAILED: "❌", Outcome.ERROR: "⚠️", Outcome.MANUAL: "☐"}

RUNBOOK_COMMAND = "firewatch runbook {incident} --by {name}"
APPROVE_COMMAND = "firewatch approve {incident} {number} --by {name}"
DECLINE_COMMAND = "firewatch decline {incident} {number} --by {name}"

RISK_TEXT = {
    Risk.LOW: "low risk: runs when proposed",
    Risk.MEDIUM: "medium risk: needs an approval",
    Risk.HIGH: "high risk: another person must approve",
}


def _hhmm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M")


def result_line(result: CheckResult, runbook: Runbook | None) -> str:
    check = runbook.check(result.name) if runbook is not None else None
    title = f" ({check.title})" if check is not None and check.title else ""
    return f"{_MARKS[result.outcome]} {result.name}{title}: {result.summary}"


def result_lines(run: RunbookRun, runbook: Runbook | None) -> list[str]:
    lines = [result_line(r, runbook) for r in run.results]
    for r in run.results:
        if r.value and r.outcome != Outcome.MANUAL:
            lines.append(f"    {r.name}: " + r.value.strip().replace("\n", "\n      ")[:500])
    return lines


def verdict(run: RunbookRun) -> str:
    bad = [r for r in run.results if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    return "all checks passed" if not bad else f"{len(bad)} of {len(run.results)} not ok"


def page_digest(state: IncidentState) -> str:
    """``Diagnostics 09:02 UTC: health 503 · db ok · ...`` for pages; empty before any run."""
    run = state.latest_diagnostics
    if run is None or run.finished_at is None:
        return ""
    line = digest(run.results)
    if len(line) > DIGEST_MAX:
        line = line[: DIGEST_MAX - 1].rstrip() + "…"
    return f"Diagnostics {_hhmm(run.finished_at)} UTC: {line}" if line else ""


def link_lines(runbook: Runbook | None) -> list[str]:
    if runbook is None:
        return []
    lines = [f"Runbook: {runbook.title}" + (f" <{runbook.url}>" if runbook.url else "")]
    lines += [f"{link.title}: <{link.url}>" for link in runbook.links]
    return lines


def verification_text(run: RunbookRun, state: IncidentState) -> str:
    if run.verifies is None:
        return ""
    proposal = state.proposal(run.verifies)
    what = f"#{run.verifies} {proposal.action}" if proposal else f"mitigation #{run.verifies}"
    if run.passed:
        return (
            f"Verification after {what} passed. If the service has recovered, resolve it: "
            f'firewatch resolve {state.incident_id} --by NAME --root-cause "..." --fix "..."'
        )
    return f"Verification after {what} did not pass: the incident stays {state.status.value}."


def proposal_line(proposal: MitigationProposal, policy: Policy) -> str:
    """One audit line for the ticket's Mitigation Actions."""

    def who(name: str | None) -> str:
        person = policy.roster.person(name) if name else None
        return person.label if person else (name or "")

    parts = [
        f"#{proposal.number} {proposal.action} ({proposal.title}), {proposal.risk.value} risk:",
        f"proposed by {who(proposal.proposed_by)} at {_hhmm(proposal.proposed_at)} UTC",
    ]
    if proposal.decided_by and proposal.decided_at:
        verb = "declined" if proposal.status == ProposalStatus.DECLINED else "approved"
        parts.append(f"{verb} by {who(proposal.decided_by)} at {_hhmm(proposal.decided_at)} UTC")
    outcome = proposal.outcome
    if outcome is not None:
        code = f" (HTTP {outcome.response_status})" if outcome.response_status else ""
        parts.append(f"{outcome.status}{code}: {outcome.summary}")
    elif proposal.status in (ProposalStatus.EXPIRED, ProposalStatus.PROPOSED):
        parts.append(proposal.status.value)
    line = " ".join(parts[:1]) + " " + "; ".join(parts[1:])
    if outcome is not None and outcome.request:
        sent = " ".join(outcome.request.split())[:300]
        answer = " ".join((outcome.response_excerpt or "").split())[:300]
        line += f"\n     sent: {sent}" + (f"\n     answer: {answer}" if answer else "")
    return line
