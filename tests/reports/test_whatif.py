"""The policy what-if over a seeded November 2026 (issue 14): shortening the P1 primary
window from 15 to 5 minutes. Every expected figure is worked out by hand below.

The shipped policy (tests.conftest.load_default_policy): P1 ladder primary 15m, secondary
30m, team lead 45m, engineering manager 60m; P1 response SLA 15m; P1 no-progress after 1h
pages the team lead (erin) and the engineering manager (frank); P2 primary window 1h,
SLA 1h. Business hours Mon-Fri 09:00-17:00 America/New_York (EST, UTC-5, in November
after Nov 1).

The rota (weekly from Mon 2026-01-05 09:00 New York): Jan 5 -> Nov 9 is 308 days = 44
weeks, so the shift of Nov 9 is number 44: primary alice (44 % 4 = 0 in [alice, bob, carol,
dave]), secondary bob ([bob, carol, dave, alice]). Shift 45 from Nov 16 14:00 UTC: primary
bob, secondary carol. Shift 46 from Nov 23 14:00 UTC: primary carol, secondary dave.
"""

from __future__ import annotations

import pytest

from domain.whatif import Compliance, PersonPages, WhatIfReport, whatif
from domain.whatif_text import render_whatif
from tests.reports.whatif_seeded import (
    END,
    OVERRIDES,
    POLICY,
    RECORDS,
    START,
    at,
    shorter_p1_primary,
)


@pytest.fixture(scope="module")
def report() -> WhatIfReport:
    return whatif(RECORDS, "2026-11", START, END, POLICY, shorter_p1_primary(POLICY), OVERRIDES)


def test_incidents_of_the_month_only(report: WhatIfReport) -> None:
    assert [d.incident_id for d in report.details] == [f"W{n}" for n in range(1, 10)]
    assert report.incidents == 9


def test_four_incidents_now_reach_the_secondary(report: WhatIfReport) -> None:
    # Acked after 5 minutes (or never) but within 15: W2 (7), W3 (12), W6 (never, resolved
    # at 8), W9 (10). W1 (3) and W5 (5, the same instant) stay; W4 reached it already.
    further = [d.incident_id for d in report.details if d.change == "further"]
    assert further == ["W2", "W3", "W6", "W9"]
    assert (report.escalated_further, report.escalated_less_far, report.unchanged) == (4, 0, 5)
    # Secondary reached: W4 only actually; W2, W3, W4, W6, W9 proposed (W7 is a P2).
    reach = [d.incident_id for d in report.details if d.proposed_level >= 2]
    assert reach == ["W2", "W3", "W4", "W6", "W9"]
    assert [d.incident_id for d in report.details if d.actual_level >= 2] == ["W4"]


def test_who_is_paged_when(report: WhatIfReport) -> None:
    by_id = {d.incident_id: d for d in report.details}
    pages = {
        name: (
            [(p.minutes, p.person, p.level) for p in d.actual],
            [(p.minutes, p.person, p.level) for p in d.proposed],
        )
        for name, d in by_id.items()
    }
    assert pages["W1"] == ([(0, "alice", 1)], [(0, "alice", 1)])
    assert pages["W2"] == ([(0, "alice", 1)], [(0, "alice", 1), (5, "bob", 2)])
    assert pages["W3"] == ([(0, "alice", 1)], [(0, "alice", 1), (5, "bob", 2)])
    assert pages["W4"] == ([(0, "bob", 1), (15, "carol", 2)], [(0, "bob", 1), (5, "carol", 2)])
    assert pages["W5"] == ([(0, "dave", 1)], [(0, "dave", 1)])  # the override; ack wins the tie
    assert pages["W6"] == ([(0, "bob", 1)], [(0, "bob", 1), (5, "carol", 2)])
    assert pages["W7"] == ([(0, "bob", 1)], [(0, "bob", 1)])
    no_progress = [(0, "carol", 1), (90, "erin", None), (90, "frank", None)]
    assert pages["W8"] == (no_progress, no_progress)
    assert pages["W9"] == ([(0, "carol", 1)], [(0, "carol", 1), (5, "dave", 2)])
    assert [p.kind for p in by_id["W8"].actual] == ["page", "no_progress", "no_progress"]
    assert by_id["W2"].proposed[1].at == at(11, 3, 5)
    assert by_id["W2"].proposed[1].channel == "sms"  # the shipped contact order starts there


def test_pages_per_person(report: WhatIfReport) -> None:
    # Out of hours (New York): W2 (Tue 22:00, 22:05), W4 (Mon 21:00, 21:15 / 21:05),
    # W7 (Saturday); every other page falls Mon-Fri 09:00-17:00.
    assert report.people == [
        # W1, W2 (ooh), W3 both columns.
        PersonPages(
            person="alice", actual=3, proposed=3, actual_out_of_hours=1, proposed_out_of_hours=1
        ),
        # actual W4 (ooh), W6, W7 (ooh) = 3, 2 ooh; proposed + W2 (ooh) + W3 = 5, 3 ooh.
        PersonPages(
            person="bob", actual=3, proposed=5, actual_out_of_hours=2, proposed_out_of_hours=3
        ),
        # actual W4 (ooh), W8, W9 = 3, 1 ooh; proposed + W6 = 4, 1 ooh.
        PersonPages(
            person="carol", actual=3, proposed=4, actual_out_of_hours=1, proposed_out_of_hours=1
        ),
        # actual W5 = 1; proposed + W9 = 2.
        PersonPages(
            person="dave", actual=1, proposed=2, actual_out_of_hours=0, proposed_out_of_hours=0
        ),
        PersonPages(  # W8's no-progress page
            person="erin", actual=1, proposed=1, actual_out_of_hours=0, proposed_out_of_hours=0
        ),
        PersonPages(
            person="frank", actual=1, proposed=1, actual_out_of_hours=0, proposed_out_of_hours=0
        ),
    ]
    assert (report.pages_actual, report.pages_proposed) == (12, 16)  # 3+3+3+1+1+1, 3+5+4+2+1+1
    assert (report.out_of_hours_actual, report.out_of_hours_proposed) == (4, 5)  # 1+2+1, 1+3+1


def test_compliance_unchanged_when_the_target_is(report: WhatIfReport) -> None:
    # Acks are facts: met W1 (3), W2 (7), W3 (12), W5 (5), W8 (2), W9 (10) within 15m and
    # W7 (30) within P2's 1h = 7; missed W4 (20) and W6 (resolved unacknowledged): 7 / 9.
    expected = Compliance(compliance=0.7778, met=7, measured=9, pending=0)
    assert report.compliance_actual == expected
    assert report.compliance_proposed == expected


def test_compliance_moves_with_a_tighter_target() -> None:
    proposed = shorter_p1_primary(POLICY, sla=10)
    report = whatif(RECORDS, "2026-11", START, END, POLICY, proposed, OVERRIDES)
    # A 10-minute P1 target: W3 (12) now misses; W9 (10) still meets it: 6 / 9.
    assert report.compliance_proposed == Compliance(compliance=0.6667, met=6, measured=9, pending=0)
    assert report.compliance_actual.met == 7


def test_sanity_notes(report: WhatIfReport) -> None:
    # W7 was escalated by hand to level 2; the replay (no hand escalations) pages level 1.
    assert report.differs_from_record == ["W7"]
    w7 = next(d for d in report.details if d.incident_id == "W7")
    assert "escalated by hand: not replayed" in w7.notes
    assert report.updates_unknown == 1  # W9


def test_same_policy_changes_nothing() -> None:
    report = whatif(RECORDS, "2026-11", START, END, POLICY, POLICY, OVERRIDES)
    assert (report.escalated_further, report.escalated_less_far, report.unchanged) == (0, 0, 9)
    assert all(d.actual == d.proposed for d in report.details)
    assert report.pages_actual == report.pages_proposed == 12


def test_text(report: WhatIfReport) -> None:
    text = render_whatif(report)
    assert "Pages                   12        16" in text
    assert "Out-of-hours pages       4         5" in text
    assert "Escalates further: 4; less far: 0; same: 5" in text
    assert "  bob          3 (2) -> 5 (3)" in text
    assert "+5m bob (secondary, L2) (out of hours)" in text  # W2's proposed page
    assert "Response compliance: 77.8% (7/9 met, 0 pending) -> 77.8%" in text


def test_text_summary_only(report: WhatIfReport) -> None:
    text = render_whatif(report, details=False)
    assert "Incidents:" not in text and "W2 P1" not in text
    assert "The replay under the current policy differs from the record for: W7" in text
    assert "1 incident(s) predate status-update times" in text  # W9
