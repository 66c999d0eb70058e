"""When a notification has become moot (``domain.delivery.moot_reason``): a table."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.delivery import RECORD_KINDS, moot_reason
from domain.incident import IncidentState, Status
from domain.messages import MessageKind as K
from tests.domain.support import T0, incident

DUE = T0 + timedelta(minutes=15)
BEFORE, AFTER = DUE - timedelta(minutes=1), DUE + timedelta(minutes=1)


def state(**changes: object) -> IncidentState:
    return incident("P1", **changes)


def acked(at: datetime) -> dict[str, object]:
    return {"status": Status.INVESTIGATING, "acknowledged_at": at, "acknowledged_by": "dave"}


ACKED_AFTER, ACKED_BEFORE = acked(AFTER), acked(BEFORE)
PROGRESSED = {**ACKED_BEFORE, "last_update_at": AFTER}
GONE_QUIET = "progress was reported since"
RESOLVED = {"status": Status.RESOLVED, "resolved_at": AFTER}


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        (K.PAGE, {}, None),
        (K.PAGE, ACKED_AFTER, "acknowledged by dave"),
        # Paged after the ack (escalate now on an acknowledged incident): still wanted.
        (K.PAGE, ACKED_BEFORE, None),
        (K.PAGE, RESOLVED, "INC-2026-11-26-001 is resolved"),
        (K.LADDER_REPEAT, ACKED_AFTER, "acknowledged by dave"),
        (K.INFORM, ACKED_AFTER, None),
        (K.INFORM, RESOLVED, "INC-2026-11-26-001 is resolved"),
        (K.UPDATE_REMINDER, ACKED_BEFORE, None),
        (K.UPDATE_REMINDER, PROGRESSED, GONE_QUIET),
        (K.UPDATE_OVERDUE, {**ACKED_BEFORE, "mitigated_at": AFTER}, GONE_QUIET),
        (K.NO_PROGRESS, {**ACKED_BEFORE, "last_update_at": BEFORE}, None),
        (K.NO_PROGRESS, PROGRESSED, GONE_QUIET),
        (K.STAKEHOLDER_NOTICE, RESOLVED, "INC-2026-11-26-001 is resolved"),
        (K.RESPONDER_ADDED, RESOLVED, "INC-2026-11-26-001 is resolved"),
    ],
)
def test_moot_reason(kind: K, changes: dict[str, object], expected: str | None) -> None:
    assert moot_reason(kind, DUE, state(**changes)) == expected


@pytest.mark.parametrize("kind", sorted(RECORD_KINDS))
def test_the_channel_record_is_never_moot(kind: K) -> None:
    for changes in ({}, ACKED_AFTER, RESOLVED, PROGRESSED):
        assert moot_reason(kind, DUE, state(**changes)) is None
