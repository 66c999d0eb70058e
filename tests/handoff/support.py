"""Shared pieces of the handoff tests: a fixed report with one of everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain import rotation
from domain.changes import Change
from domain.handoff import (
    HandoffNote,
    HandoffReport,
    HeartbeatLine,
    IntegrationHealth,
    OpenIncidentLine,
    handoff_id,
    plan_test_pages,
)
from domain.policy import Policy, Role

# Monday 7 Dec 2026 09:00 New York (EST): dave hands the primary rotation to alice.
HANDOFF_AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def sample_report(policy: Policy) -> HandoffReport:
    roster = policy.roster
    start, end = rotation.shift_bounds(roster.primary, HANDOFF_AT)
    assert start == HANDOFF_AT
    outgoing = rotation.holder(roster, Role.PRIMARY, start - timedelta(seconds=1))
    incoming = rotation.holder(roster, Role.PRIMARY, start)
    hid = handoff_id(Role.PRIMARY, start)
    at = HANDOFF_AT + timedelta(seconds=2)
    return HandoffReport(
        handoff_id=hid,
        role=Role.PRIMARY,
        team=policy.team,
        timezone=roster.primary.timezone,
        at=at,
        shift_start=start,
        shift_end=end,
        outgoing=outgoing,
        incoming=incoming,
        incidents=[
            OpenIncidentLine(
                incident_id="INC-2026-12-06-001",
                severity="P2",
                status="Investigating",
                service="api",
                summary="Checkout latency high",
                assignee="Carol Christensen",
                last_update_at=datetime(2026, 12, 7, 13, 30, tzinfo=UTC),
                last_update="Scaling the pool; watching p99",
                next_step="Update due at 15:30 UTC",
            )
        ],
        integrations=[
            IntegrationHealth(
                name="pagerduty",
                kind="pagerduty",
                service="api",
                last_seen_at=HANDOFF_AT - timedelta(hours=5),
            ),
            IntegrationHealth(
                name="grafana",
                kind="grafana",
                service="api",
                last_seen_at=HANDOFF_AT - timedelta(days=9, hours=1),
            ),
            IntegrationHealth(name="generic", kind="generic", service="api"),
        ],
        heartbeats=[
            HeartbeatLine(
                name="nightly-backup", status="up", last_ping_at=HANDOFF_AT - timedelta(hours=8)
            ),
            HeartbeatLine(
                name="billing-sync", status="missed", last_ping_at=HANDOFF_AT - timedelta(days=2)
            ),
        ],
        changes=[
            Change(
                change_id="deploy-42",
                service="api",
                summary="Deploy v2.14.0",
                source="api",
                who="bob",
                at=datetime(2026, 12, 4, 16, 12, tzinfo=UTC),
                received_at=datetime(2026, 12, 4, 16, 12, tzinfo=UTC),
            )
        ],
        changes_since=start - timedelta(days=7),
        notes=[
            HandoffNote(
                id=1,
                by="dave",
                text="The api pool resize is half done; see INC-2026-12-06-001.",
                at=datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
            )
        ],
        test_pages=plan_test_pages(hid, {Role.PRIMARY: incoming}),
        test_page_window=policy.handoff.test_page_window,
        silent_after=policy.handoff.silent_after,
    )
