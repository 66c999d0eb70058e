"""``domain.whatif``: the replay of one incident, who was on call, out of hours; table
tests with figures worked out by hand, and properties of the ladder replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import transitions
from domain.incident import AcknowledgeRequest, StatusUpdateRequest
from domain.policy import LadderLevel, Policy, Role, Severity
from domain.records import IncidentRecord, record_of
from domain.schedule import ScheduledOverride
from domain.whatif import Oncall, StoredOverride, out_of_hours, replay
from tests.conftest import load_default_policy
from tests.domain.support import T0 as SUPPORT_T0
from tests.domain.support import incident

POLICY: Policy = load_default_policy()
HOURS = POLICY.business_hours  # Mon-Fri 09:00-17:00 New York, holidays Dec 25, Jan 1
ONCALL = Oncall(POLICY.roster)
# Tue 2026-11-10 15:00 UTC = 10:00 EST: the shift from Mon Nov 9 (alice primary, bob
# secondary; see tests/reports/test_whatif.py); erin team lead, frank manager.
OPENED = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def record(
    severity: str = "P1",
    ack: float | None = None,
    resolve: float | None = None,
    updates: list[float] | None = None,
    mitigate: float | None = None,
) -> IncidentRecord:
    return IncidentRecord(
        incident_id="INC-1",
        workflow_id="wf-1",
        service="api",
        source="api",
        dedup_key="k",
        summary="s",
        severity_at_open=Severity(severity),
        severity=Severity(severity),
        detected_at=OPENED,
        detected_from_alert=False,
        opened_at=OPENED,
        acknowledged_at=OPENED + m(ack) if ack is not None else None,
        acknowledged_by="alice" if ack is not None else None,
        mitigated_at=OPENED + m(mitigate) if mitigate is not None else None,
        resolved_at=OPENED + m(resolve) if resolve is not None else None,
        resolved_by="alice" if resolve is not None else None,
        status="Resolved" if resolve is not None else "Investigating",
        status_updates=[OPENED + m(u) for u in updates] if updates is not None else None,
    )


def with_p1_primary(window: float) -> Policy:
    p1 = POLICY.severities[Severity.P1]
    ladder = (LadderLevel(target=Role.PRIMARY, window=m(window)), *p1.ladder[1:])
    sev = {**POLICY.severities, Severity.P1: p1.model_copy(update={"ladder": ladder})}
    return POLICY.model_copy(update={"severities": sev})


Row = tuple[float, str, str, int | None]  # minutes after opening, who, kind, level


def pages(rec: IncidentRecord, policy: Policy = POLICY, until_minutes: float = 10_000) -> list[Row]:
    found = replay(rec, policy, ONCALL, OPENED + m(until_minutes), HOURS)
    return [(p.minutes, p.person, p.kind, p.level) for p in found]


@pytest.mark.parametrize(
    ("rec", "until", "expected"),
    [
        # Acked at 3: the primary only.
        (record(ack=3, resolve=30, updates=[]), 10_000, [(0, "alice", "page", 1)]),
        # Acked at the very opening instant: the opening page has gone out already.
        (record(ack=0, resolve=30, updates=[]), 10_000, [(0, "alice", "page", 1)]),
        # Acked at 15 exactly, as the secondary falls due: the ack wins the tie.
        (record(ack=15, resolve=30, updates=[]), 10_000, [(0, "alice", "page", 1)]),
        # Acked at 16: secondary at +15 (primary window 15).
        (
            record(ack=16, resolve=30, updates=[]),
            10_000,
            [(0, "alice", "page", 1), (15, "bob", "page", 2)],
        ),
        # Never acked, resolved at 200: two passes of the ladder (loops 2) at 0, 15, 45, 90
        # and 150 (0+15+30+45+60), 165, 195; the third-level page of pass two would be
        # 150+15+30 = 195 < 200, the manager's at 195+45 = 240 is after the resolution.
        (
            record(resolve=200),
            10_000,
            [
                (0, "alice", "page", 1),
                (15, "bob", "page", 2),
                (45, "erin", "page", 3),
                (90, "frank", "page", 4),
                (150, "alice", "page", 1),
                (165, "bob", "page", 2),
                (195, "erin", "page", 3),
            ],
        ),
        # Still open, never acked, replayed up to +50: 0, 15, 45 only.
        (
            record(),
            50,
            [(0, "alice", "page", 1), (15, "bob", "page", 2), (45, "erin", "page", 3)],
        ),
        # Acked at 5, no update: no progress for 1h pages erin and frank at 65; the key is
        # spent, so the quiet spell until 200 pages nobody again.
        (
            record(ack=5, resolve=200, updates=[]),
            10_000,
            [
                (0, "alice", "page", 1),
                (65, "erin", "no_progress", None),
                (65, "frank", "no_progress", None),
            ],
        ),
        # An update at 50 restarts the clock: no progress at 110, resolved at 100: none.
        (record(ack=5, resolve=100, updates=[50]), 10_000, [(0, "alice", "page", 1)]),
        # A mitigation at 40 is progress too: 40 + 60 = 100 > resolved at 90.
        (record(ack=5, resolve=90, updates=[], mitigate=40), 10_000, [(0, "alice", "page", 1)]),
        # Update times unknown: the no-progress pages at 65 are not counted.
        (record(ack=5, resolve=200), 10_000, [(0, "alice", "page", 1)]),
        # P3 has no ladder: nobody paged.
        (record(severity="P3", ack=600, resolve=700, updates=[]), 10_000, []),
        # P2: primary window 1h; acked at 61: bob at +60.
        (
            record(severity="P2", ack=61, resolve=90, updates=[]),
            10_000,
            [(0, "alice", "page", 1), (60, "bob", "page", 2)],
        ),
    ],
)
def test_replay(rec: IncidentRecord, until: float, expected: list[Row]) -> None:
    assert pages(rec, until_minutes=until) == expected


def test_replay_under_a_proposed_window() -> None:
    # Acked at 7: with a 5-minute primary window the secondary is paged at +5.
    assert pages(record(ack=7, resolve=30, updates=[]), with_p1_primary(5)) == [
        (0, "alice", "page", 1),
        (5, "bob", "page", 2),
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 10, 14, 0, tzinfo=UTC), False),  # Tue 09:00 EST: opens
        (datetime(2026, 11, 10, 13, 59, tzinfo=UTC), True),  # Tue 08:59 EST
        (datetime(2026, 11, 10, 21, 59, tzinfo=UTC), False),  # Tue 16:59 EST
        (datetime(2026, 11, 10, 22, 0, tzinfo=UTC), True),  # Tue 17:00 EST: closed
        (datetime(2026, 11, 14, 15, 0, tzinfo=UTC), True),  # Saturday 10:00 EST
        (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), True),  # Christmas (a Friday), 10:00
        (datetime(2026, 7, 1, 13, 0, tzinfo=UTC), False),  # Wed 09:00 EDT (UTC-4)
        (datetime(2026, 7, 1, 12, 59, tzinfo=UTC), True),  # Wed 08:59 EDT
    ],
)
def test_out_of_hours(when: datetime, expected: bool) -> None:
    assert out_of_hours(when, HOURS) is expected


def _override(
    n: int, person: str, start: datetime, end: datetime, created: datetime
) -> ScheduledOverride:
    return ScheduledOverride(
        id=n,
        role=Role.PRIMARY,
        person=person,
        start=start,
        end=end,
        created_by="bob",
        created_at=created,
    )


T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stored", "when", "expected"),
    [
        ([], T0, "alice"),  # the rota
        # dave from 12:00 to 14:00, made the day before: in force at 12:00, not at 14:00.
        ([StoredOverride(_override(1, "dave", T0, T0 + m(120), T0 - m(1440)))], T0, "dave"),
        (
            [StoredOverride(_override(1, "dave", T0, T0 + m(120), T0 - m(1440)))],
            T0 + m(120),
            "alice",
        ),
        # Removed at 13:00: in force at 12:30, not at 13:00.
        (
            [StoredOverride(_override(1, "dave", T0, T0 + m(120), T0 - m(60)), T0 + m(60))],
            T0 + m(30),
            "dave",
        ),
        (
            [StoredOverride(_override(1, "dave", T0, T0 + m(120), T0 - m(60)), T0 + m(60))],
            T0 + m(60),
            "alice",
        ),
        # Made at 12:30 (covering from 12:00): not in force at 12:10 when a page went out.
        ([StoredOverride(_override(1, "dave", T0, T0 + m(120), T0 + m(30)))], T0 + m(10), "alice"),
        # Two overlapping: the later (higher id) wins, as at run time.
        (
            [
                StoredOverride(_override(2, "carol", T0, T0 + m(60), T0 - m(60))),
                StoredOverride(_override(1, "dave", T0, T0 + m(60), T0 - m(60))),
            ],
            T0,
            "carol",
        ),
    ],
)
def test_oncall(stored: list[StoredOverride], when: datetime, expected: str) -> None:
    assert Oncall(POLICY.roster, stored)(Role.PRIMARY, when).name == expected


def _level(rows: list[Row]) -> int:
    return max((r[3] for r in rows if r[3] is not None), default=0)


acks = st.one_of(st.none(), st.integers(min_value=0, max_value=120))
windows = st.integers(min_value=1, max_value=30)


@settings(max_examples=60, deadline=None)
@given(ack=acks, short=windows, extra=st.integers(min_value=0, max_value=30))
def test_a_shorter_primary_window_never_escalates_less_far(
    ack: int | None, short: int, extra: int
) -> None:
    rec = record(ack=ack, resolve=240, updates=[])
    short_pages = pages(rec, with_p1_primary(short))
    long_pages = pages(rec, with_p1_primary(short + extra))
    assert _level(short_pages) >= _level(long_pages)


@settings(max_examples=60, deadline=None)
@given(ack=acks, window=windows)
def test_the_secondary_is_paged_iff_the_ack_comes_after_the_window(
    ack: int | None, window: int
) -> None:
    rec = record(ack=ack, resolve=240, updates=[])
    found = pages(rec, with_p1_primary(window))
    secondary = [p for p in found if p[3] == 2]
    assert bool(secondary) == (ack is None or ack > window)
    # The primary is paged at opening; no later ladder page at or after the ack.
    assert found[0] == (0, "alice", "page", 1)
    assert all(ack is None or p[0] < ack for p in found[1:] if p[2] == "page")


def test_the_record_keeps_status_update_times() -> None:
    state = incident("P1")
    transitions.acknowledge(state, POLICY, AcknowledgeRequest(by="alice"), SUPPORT_T0 + m(2))
    for minute in (10, 40):
        update = StatusUpdateRequest(by="alice", message=f"at {minute}")
        transitions.post_update(state, POLICY, update, SUPPORT_T0 + m(minute))
    # The acknowledgement is not an update; the two updates are, at +10 and +40.
    assert record_of(state, True).status_updates == [SUPPORT_T0 + m(10), SUPPORT_T0 + m(40)]
    # A record stored before the field existed reads as "not known".
    stored = record_of(state, True).model_dump(mode="json")
    del stored["status_updates"]
    assert IncidentRecord.model_validate(stored).status_updates is None
