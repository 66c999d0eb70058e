"""The seeded November 2026 of the policy what-if (tests/reports/test_whatif.py says how
every expected figure follows from it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.policy import LadderLevel, Policy, Role, Severity
from domain.records import IncidentRecord
from domain.schedule import ScheduledOverride
from domain.whatif import StoredOverride
from tests.conftest import load_default_policy

POLICY: Policy = load_default_policy()
START = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # Nov 1 00:00 EDT
END = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # Dec 1 00:00 EST


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def shorter_p1_primary(policy: Policy, minutes: int = 5, sla: int | None = None) -> Policy:
    p1 = policy.severities[Severity.P1]
    ladder = (LadderLevel(target=Role.PRIMARY, window=timedelta(minutes=minutes)), *p1.ladder[1:])
    update: dict[str, object] = {"ladder": ladder}
    if sla is not None:
        update["response_sla"] = timedelta(minutes=sla)
    changed = p1.model_copy(update=update)
    return policy.model_copy(update={"severities": {**policy.severities, Severity.P1: changed}})


def rec(
    name: str,
    severity: str,
    opened: datetime,
    ack: int | None,
    by: str | None,
    resolve: int,
    level: int,
    *,
    updates: list[int] | None = None,
    hand: bool = False,
) -> IncidentRecord:
    """Minutes after opening for ack, updates and resolution."""
    return IncidentRecord(
        incident_id=name,
        workflow_id=f"wf-{name}",
        service="api",
        source="api",
        dedup_key=f"api-{name}",
        summary=f"{name} on api",
        severity_at_open=Severity(severity),
        severity=Severity(severity),
        detected_at=opened,
        detected_from_alert=False,
        opened_at=opened,
        acknowledged_at=opened + timedelta(minutes=ack) if ack is not None else None,
        acknowledged_by=by,
        resolved_at=opened + timedelta(minutes=resolve),
        resolved_by=by or "pagerduty",
        status="Resolved",
        max_level_paged=level,
        pages=level,
        escalated_by_hand=hand,
        status_updates=None
        if updates is None
        else [opened + timedelta(minutes=u) for u in updates],
    )


RECORDS = [
    # Tue 10:00 NY; alice acks at 3 < 5: nobody else, either way.
    rec("W1", "P1", at(10, 15), 3, "alice", 30, 1, updates=[]),
    # Tue 22:00 NY (out of hours); ack at 7 > 5: bob (secondary) paged at +5 proposed.
    rec("W2", "P1", at(11, 3), 7, "alice", 40, 1, updates=[]),
    # Thu 11:00 NY; ack at 12 > 5: bob paged at +5 proposed.
    rec("W3", "P1", at(12, 16), 12, "alice", 50, 1, updates=[]),
    # Mon Nov 16 21:00 NY (out of hours), bob's week; carol acks at 20: she is paged at +15
    # actually and at +5 proposed; the team lead would come at +45 / +35: level 2 both.
    rec("W4", "P1", at(17, 2), 20, "carol", 60, 2, updates=[]),
    # Wed 10:00 NY under an override (dave covers primary); dave acks at exactly 5: the
    # proposed secondary page at +5 is stopped by the ack at the same instant.
    rec("W5", "P1", at(18, 15), 5, "dave", 25, 1, updates=[]),
    # Fri 09:30 NY; never acknowledged, resolved at 8: carol paged at +5 proposed.
    rec("W6", "P1", at(20, 14, 30), None, None, 8, 1, updates=[]),
    # Sat 07:00 NY (out of hours), P2: the P1 change does not touch it. Escalated by hand
    # to level 2 (recorded), which the replay cannot time: a sanity note.
    rec("W7", "P2", at(21, 12), 30, "bob", 120, 2, updates=[], hand=True),
    # Mon Nov 23 10:00 NY, carol's week; ack at 2, one update at 30, resolved at 150: no
    # progress since +30 pages erin and frank at +90 (11:30 NY), in both columns.
    rec("W8", "P1", at(23, 15), 2, "carol", 150, 1, updates=[30]),
    # Tue 15:00 NY; ack at 10 > 5: dave (secondary) at +5 proposed. Its record predates
    # status-update times: no no-progress pages (it would be +70, before resolving at 100).
    rec("W9", "P1", at(24, 20), 10, "carol", 100, 1),
    # Oct 31 23:00 New York: outside the team's November, left out (ack at 10 > 5).
    rec("X1", "P1", at(1, 3), 10, "carol", 30, 1, updates=[]),
]

OVERRIDES = [
    StoredOverride(
        ScheduledOverride(
            id=1,
            role=Role.PRIMARY,
            person="dave",
            start=at(18, 14),
            end=at(18, 18),
            created_by="bob",
            created_at=at(17, 12),
        )
    ),
    # Removed before W2 opened: bob stays the secondary for W2's proposed page.
    StoredOverride(
        ScheduledOverride(
            id=2,
            role=Role.SECONDARY,
            person="erin",
            start=at(11, 0),
            end=at(11, 6),
            created_by="bob",
            created_at=at(9, 12),
        ),
        removed_at=at(10, 12),
    ),
]
