"""Policies for tests that run in real time: the shipped rules, on a faster clock.

``scaled_policy(policy, unit=timedelta(seconds=1))`` turns every minute of every
severity's timings into one second, so the P1 ladder pages at 0 s, 15 s, 45 s, 90 s
instead of 0, 15, 45, 90 minutes. ``write_policy`` stores it where a worker process
can load it through ``FIREWATCH_POLICY``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from domain.policy import LadderLevel, Policy, Severity, SeverityPolicy
from domain.policy_file import parse_policy, with_runbooks
from domain.runbooks import Runbook

MINUTE = timedelta(minutes=1)

# Every duration a severity carries; all of them move to the faster clock together.
_SEVERITY_DURATIONS = (
    "response_sla",
    "no_progress_after",
    "update_reminder_after",
    "update_overdue_after",
    "stakeholder_deadline",
)


def _scale(value: timedelta | None, factor: float) -> timedelta | None:
    if value is None:
        return None
    # Round to whole microseconds: timedelta * float is exact only up to them anyway.
    return timedelta(microseconds=round(value / timedelta(microseconds=1) * factor))


def _scaled_severity(sp: SeverityPolicy, factor: float) -> SeverityPolicy:
    update: dict[str, Any] = {
        name: _scale(getattr(sp, name), factor) for name in _SEVERITY_DURATIONS
    }
    update["ladder"] = tuple(
        level.model_copy(update={"window": _scale(level.window, factor)}) for level in sp.ladder
    )
    # model_copy skips validation: re-validate so a scaled policy obeys the same rules.
    return SeverityPolicy.model_validate({**sp.model_dump(), **update})


def scaled_policy(base: Policy, *, unit: timedelta) -> Policy:
    """A copy of ``base`` where one minute of every severity's timings lasts ``unit``.

    Only the incident timings move (ladder windows, no-progress, update cadence,
    stakeholder deadline, response SLA); rotations, business hours and post-mortem
    scheduling keep their real lengths.
    """
    if unit <= timedelta(0):
        raise ValueError("unit must be positive")
    factor = unit / MINUTE
    severities = {sev: _scaled_severity(sp, factor) for sev, sp in base.severities.items()}
    return Policy.model_validate({**base.model_dump(), "severities": severities})


def short_ladder_policy(base: Policy, *, unit: timedelta, window: timedelta) -> Policy:
    """``scaled_policy(base, unit=unit)`` with every P1 ladder window set to ``window``,
    one pass over the ladder."""
    policy = scaled_policy(base, unit=unit)
    p1 = policy.for_severity(Severity.P1)
    ladder = tuple(LadderLevel(target=lvl.target, window=window) for lvl in p1.ladder)
    p1 = p1.model_copy(update={"ladder": ladder, "loops": 1})
    return policy.model_copy(update={"severities": {**policy.severities, Severity.P1: p1}})


def write_policy(policy: Policy, path: Path) -> Path:
    """Write ``policy`` as a YAML file the worker loads via ``FIREWATCH_POLICY``.

    Durations are written as ``15s``-style text, which holds whole seconds only: a
    policy that would not read back identically (sub-second timings) is refused
    rather than silently truncated.
    """
    text = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    reread = parse_policy(text, str(path))
    if reread != policy:
        raise ValueError(
            "policy does not survive YAML (durations are whole seconds there);"
            " pick a unit that makes every timing a whole number of seconds"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def api_runbook(health_url: str, deploy_url: str) -> Runbook:
    """An api runbook on loopback servers: two http checks, a manual item, a rollback hook."""
    return Runbook.model_validate(
        {
            "title": "API Service Issues",
            "links": [{"title": "Dashboard", "url": "https://grafana.example/d/api"}],
            "checks": [
                {"name": "health", "kind": "http", "url": f"{health_url}/health", "timeout": "10s"},
                {
                    "name": "db",
                    "kind": "http",
                    "url": f"{health_url}/health/detailed",
                    "json_path": "database.status",
                },
                {"name": "deploys", "kind": "changes", "within": "1h"},
                {"name": "vitals", "kind": "manual", "text": "Check Core Web Vitals"},
            ],
            "mitigations": {
                "rollback": {
                    "title": "Roll back the latest deployment",
                    "risk": "high",
                    "http": {
                        "url": f"{deploy_url}/rollback",
                        "body": '{"incident": "$incident_id", "by": "$approved_by"}',
                    },
                }
            },
        }
    )


def with_api_runbook(policy: Policy, health_url: str, deploy_url: str) -> Policy:
    return with_runbooks(policy, {"api": api_runbook(health_url, deploy_url)}, "test")
