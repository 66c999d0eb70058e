"""Heartbeat monitors, the pure part: policy validation, deadlines, status and the text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.heartbeats import (
    HeartbeatState,
    due_by,
    heartbeat_dedup_key,
    heartbeat_incident_workflow_id,
    heartbeat_workflow_id,
    is_overdue,
    missed_alert,
    missed_summary,
    span,
    status,
)
from domain.policy import HeartbeatMonitor, Policy, Severity
from domain.policy_file import PolicyError, parse_policy
from tests.conftest import DEFAULT_POLICY_PATH

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
NIGHTLY = HeartbeatMonitor(
    name="nightly-backup", period=timedelta(hours=24), grace=timedelta(hours=2), service="api"
)


def policy_with(heartbeats_yaml: str) -> Policy:
    text = DEFAULT_POLICY_PATH.read_text() + "\n" + heartbeats_yaml
    return parse_policy(text, "test.yaml")


def test_policy_reads_heartbeats() -> None:
    policy = policy_with(
        "heartbeats:\n"
        "  - {name: nightly-backup, period: 24h, grace: 2h, service: api, severity: P1}\n"
        "  - {name: queue-drain, period: 5m, service: batch}\n"
    )
    nightly = policy.heartbeat("nightly-backup")
    assert nightly is not None
    assert nightly.period == timedelta(hours=24)
    assert nightly.grace == timedelta(hours=2)
    assert nightly.severity == Severity.P1
    drain = policy.heartbeat("queue-drain")
    assert drain is not None and drain.grace == timedelta(0) and drain.severity == Severity.P2
    assert policy.heartbeat("nope") is None


def test_the_shipped_policy_has_no_heartbeats(default_policy: Policy) -> None:
    # A real monitor there would open an incident on a fresh `make up` after period + grace.
    assert default_policy.heartbeats == ()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{name: Nightly, period: 1h, service: api}", "heartbeats.0.name"),
        ("{name: a/b, period: 1h, service: api}", "heartbeats.0.name"),
        ("{name: ok, period: 0s, service: api}", "period must be at least 1s"),
        ("{name: ok, period: 1.5s, service: api}", "whole seconds"),
        ("{name: ok, period: 1h, service: ' api'}", "plain text"),
        ("{name: ok, period: 1h, service: api, severity: P9}", "heartbeats.0.severity"),
        ("{name: ok, period: 1h, service: api, every: 2h}", "heartbeats.0.every"),
        ("{name: ok, service: api}", "heartbeats.0.period"),
    ],
)
def test_bad_monitors_are_refused(entry: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem.replace(".", r"\.")):
        policy_with(f"heartbeats:\n  - {entry}\n")


def test_names_are_unique() -> None:
    with pytest.raises(PolicyError, match="heartbeats: duplicate name"):
        policy_with(
            "heartbeats:\n"
            "  - {name: job, period: 1h, service: api}\n"
            "  - {name: job, period: 2h, service: web}\n"
        )


def test_ids_and_keys() -> None:
    assert heartbeat_workflow_id("nightly-backup") == "heartbeat/nightly-backup"
    assert heartbeat_dedup_key("nightly-backup") == "heartbeat:nightly-backup"
    assert heartbeat_incident_workflow_id("nightly-backup") == (
        "incident/direct/heartbeat:nightly-backup"
    )


def test_the_summary_reads_as_the_seed_would_say_it() -> None:
    summary = missed_summary(NIGHTLY, T0, T0 + timedelta(hours=26))
    assert summary == "Heartbeat `nightly-backup` missed: no ping for 26h (period 24h, grace 2h)"
    assert span(timedelta(minutes=90, seconds=5)) == "1h30m5s"
    assert span(timedelta(0)) == "0s"
    assert span(timedelta(seconds=-3)) == "0s"


def test_the_alert_of_a_miss() -> None:
    alert = missed_alert(NIGHTLY, T0, T0 + timedelta(hours=26))
    assert alert.source == "heartbeat"
    assert alert.dedup_key == "heartbeat:nightly-backup"
    assert alert.integration is None
    assert (alert.service, alert.severity) == ("api", Severity.P2)
    assert alert.labels == {"heartbeat": "nightly-backup"}
    assert alert.details["period"] == "1d" and alert.details["grace"] == "2h"


def test_status_over_time() -> None:
    assert status(None, T0) == "waiting"
    state = HeartbeatState(name=NIGHTLY.name, monitor=NIGHTLY)
    assert status(state, T0) == "waiting" and due_by(state) is None
    state.last_ping_at = T0
    assert due_by(state) == T0 + timedelta(hours=26)
    assert status(state, T0 + timedelta(hours=23)) == "up"
    assert status(state, T0 + timedelta(hours=25)) == "late"
    assert status(state, T0 + timedelta(hours=26)) == "missed"
    state.missed_at = T0 + timedelta(hours=26)
    assert status(state, T0 + timedelta(hours=1)) == "missed"  # open until the next ping


monitors = st.builds(
    HeartbeatMonitor,
    name=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True),
    period=st.integers(1, 30 * 86400).map(lambda s: timedelta(seconds=s)),
    grace=st.integers(0, 7 * 86400).map(lambda s: timedelta(seconds=s)),
    service=st.sampled_from(["api", "batch", "database"]),
    severity=st.sampled_from(list(Severity)),
)


@given(monitor=monitors, silence=st.integers(0, 40 * 86400))
def test_overdue_exactly_after_period_and_grace(monitor: HeartbeatMonitor, silence: int) -> None:
    state = HeartbeatState(name=monitor.name, monitor=monitor, last_ping_at=T0)
    now = T0 + timedelta(seconds=silence)
    assert is_overdue(state, now) == (timedelta(seconds=silence) >= monitor.period + monitor.grace)
    # up, then late (while in grace), then missed: never back while no ping comes.
    order = ["up", "late", "missed"]
    earlier = status(state, now - timedelta(seconds=1)) if silence else "up"
    assert order.index(earlier) <= order.index(status(state, now))


@given(monitor=monitors)
def test_monitors_survive_the_payload_round_trip(monitor: HeartbeatMonitor) -> None:
    # They travel in signals and continue-as-new as JSON (durations as ``1d2h``).
    assert HeartbeatMonitor.model_validate_json(monitor.model_dump_json()) == monitor
    summary = missed_summary(monitor, T0, T0 + monitor.period + monitor.grace)
    assert summary.startswith(f"Heartbeat `{monitor.name}` missed: no ping for ")
    assert len(summary) <= 1024  # fits an Alert
