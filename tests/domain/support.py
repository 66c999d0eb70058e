"""What the domain tests share: the shipped policy, a clock origin, an incident to start from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from activities.config import default_policy as shipped_policy
from domain.incident import IncidentState, LadderRun
from domain.policy import Policy, Severity

POLICY_PATH = Path(__file__).resolve().parents[2] / "domain" / "default_policy.yaml"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@cache
def policy() -> Policy:
    return shipped_policy()  # with the seed's runbooks (domain/default_runbooks)


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def incident(severity: str = "P1", **changes: object) -> IncidentState:
    """A just-opened incident at T0 (INC-2026-11-26-001, api), with ``changes`` applied."""
    state = IncidentState(
        workflow_id="incident/direct/test",
        incident_id="INC-2026-11-26-001",
        dedup_key="test",
        service="api",
        summary="API p99 > 5s",
        severity=Severity(severity),
        opened_at=T0,
        ladder=LadderRun(anchor=T0),
        replanned_at=T0,
    )
    return state.model_copy(update=changes)
