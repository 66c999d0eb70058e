"""The weekly follow-up digest as #engineering and the team lead read it: a golden text.

FIREWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/followup/test_digest_text.py
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from domain.followup import (
    FollowUpFacts,
    OpenItem,
    OpenP3,
    UnfinishedPostmortem,
    by_owner,
    render_digest,
)
from tests.conftest import load_default_policy

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "weekly_followup.txt"
REGENERATE = os.environ.get("FIREWATCH_REGEN_GOLDEN") == "1"
AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def item(
    incident: str, number: int, owner: str, due: date, overdue: bool, status: str = "open"
) -> OpenItem:
    return OpenItem(
        incident_id=incident,
        number=number,
        title=f"Item {number} of {incident[-3:]}",
        owner=owner,
        due=due,
        overdue=overdue,
        status=status,
    )


FACTS = FollowUpFacts(
    at=AT,
    items=[
        item("INC-2026-11-20-001", 1, "bob", date(2026, 12, 18), False),
        item("INC-2026-11-20-001", 2, "dave", date(2026, 12, 4), True),
        item("INC-2026-11-24-002", 1, "bob", date(2026, 12, 1), True),
        item("INC-2026-11-24-002", 2, "carol", date(2026, 12, 10), False, "closed"),
    ],
    postmortems=[
        UnfinishedPostmortem(
            incident_id="INC-2026-12-03-001",
            summary="Checkout p99 over 5s",
            review_at=datetime(2026, 12, 4, 19, 0, tzinfo=UTC),
            held=False,
            lessons=False,
        ),
        UnfinishedPostmortem(
            incident_id="INC-2026-11-24-002",
            summary="Search index stale",
            review_at=datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
            held=True,
            lessons=False,
        ),
    ],
    p3=[
        OpenP3(
            incident_id="INC-2026-12-02-004",
            summary="Typo on the pricing page",
            service="frontend",
            status="Investigating",
            assignee="carol",
            opened_at=AT - timedelta(days=5, hours=3),
        ),
        OpenP3(
            incident_id="INC-2026-12-06-001",
            summary="Slow admin export",
            service="api",
            status="Triggered",
            assignee=None,
            opened_at=AT - timedelta(hours=20),
        ),
    ],
)


def test_the_digest_reads_as_the_golden_text() -> None:
    digest = render_digest(FACTS, load_default_policy())
    text = f"Subject: {digest.subject}\n\n{digest.text}\n"
    if REGENERATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_owners_with_overdue_items_come_first_and_their_overdue_items_lead() -> None:
    grouped = by_owner(FACTS.items)
    assert [owner for owner, _ in grouped] == ["bob", "dave", "carol"]
    assert [(i.incident_id[-3:], i.number) for i in grouped[0][1]] == [("002", 1), ("001", 1)]
