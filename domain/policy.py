"""The on-call policy: every rule of the runbook as data a team can change.

The shipped default (``default_policy.yaml``) encodes MadPlan's on-call procedures.
Each incident runs under the snapshot of this model taken when it opened.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.durations import Duration
from domain.runbooks import Runbook


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Role(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    TEAM_LEAD = "team_lead"
    ENGINEERING_MANAGER = "engineering_manager"


ROLE_TITLES: dict[Role, str] = {
    Role.PRIMARY: "Primary On-Call",
    Role.SECONDARY: "Secondary On-Call",
    Role.TEAM_LEAD: "Team Lead",
    Role.ENGINEERING_MANAGER: "Engineering Manager",
}

ContactType = Literal["sms", "voice", "slack", "email"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class _Strict(BaseModel):
    # Unknown keys in a policy file are typos: refuse them rather than ignore them.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class Person(_Strict):
    """Someone who can be paged. ``name`` is the roster key used by --by and acks."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    slack_user_id: str | None = None
    # The seed's "Primary Alert Channels": phone/SMS, then Slack, then email as backup.
    contact_order: tuple[ContactType, ...] = ("sms", "slack", "email")

    @property
    def label(self) -> str:
        return self.display_name or self.name


class Rotation(_Strict):
    """A weekly (by default) rotation. Shifts hand over at ``start``'s wall-clock time."""

    people: tuple[str, ...] = Field(min_length=1)
    start: datetime  # local wall-clock time of the first handoff, in ``timezone``
    timezone: str = "UTC"
    shift_length: Duration = timedelta(days=7)

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("start")
    @classmethod
    def _naive_local(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("give the local wall-clock time without an offset; set `timezone`")
        return value

    @field_validator("shift_length")
    @classmethod
    def _whole_days(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1) or value % timedelta(days=1):
            raise ValueError("shift_length must be a whole number of days (e.g. 7d)")
        return value


class Override(_Strict):
    """Someone covering a role for a while (holiday swaps), as in PagerDuty overrides."""

    role: Role
    person: str
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a UTC offset, e.g. 2026-12-24T09:00Z")
        if self.end <= self.start:
            raise ValueError("override end must be after start")
        return self


class Roster(_Strict):
    people: tuple[Person, ...] = Field(min_length=1)
    primary: Rotation
    secondary: Rotation
    team_lead: str
    engineering_manager: str
    overrides: tuple[Override, ...] = ()

    @model_validator(mode="after")
    def _known_people(self) -> Roster:
        names = [p.name for p in self.people]
        if len(names) != len(set(names)):
            raise ValueError("people: duplicate name")
        known = set(names)
        refs = [
            *(("primary.people", n) for n in self.primary.people),
            *(("secondary.people", n) for n in self.secondary.people),
            ("team_lead", self.team_lead),
            ("engineering_manager", self.engineering_manager),
            *((f"overrides.{i}.person", o.person) for i, o in enumerate(self.overrides)),
        ]
        for where, name in refs:
            if name not in known:
                raise ValueError(f"{where}: {name!r} is not in people")
        return self

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)


class LadderLevel(_Strict):
    """One rung: who is paged, and how long they have to acknowledge before the next."""

    target: Role
    window: Duration


class SeverityPolicy(_Strict):
    title: str
    definition: str = ""
    response_sla: Duration | None = None
    ladder: tuple[LadderLevel, ...] = ()
    # How many passes over the ladder before giving up (PagerDuty's "repeat").
    loops: int = Field(default=1, ge=1, le=10)
    inform_at_open: tuple[Role, ...] = ()
    no_progress_after: Duration | None = None
    no_progress_page: tuple[Role, ...] = (Role.TEAM_LEAD, Role.ENGINEERING_MANAGER)
    update_reminder_after: Duration | None = None
    update_overdue_after: Duration | None = None
    stakeholder_deadline: Duration | None = None
    next_business_day_review: bool = False
    war_room: bool = False
    postmortem_required: bool = False
    # Run the service's runbook checks when the incident opens (the seed's first minutes).
    diagnostics_at_open: bool = False

    @model_validator(mode="after")
    def _cadence_ordered(self) -> SeverityPolicy:
        remind, overdue = self.update_reminder_after, self.update_overdue_after
        if (remind is None) != (overdue is None):
            raise ValueError("set both update_reminder_after and update_overdue_after, or neither")
        if remind is not None and overdue is not None and overdue <= remind:
            raise ValueError("update_overdue_after must be longer than update_reminder_after")
        for level in self.ladder:
            if level.window <= timedelta(0):
                raise ValueError("ladder windows must be positive")
        return self

    @property
    def ladder_cycle(self) -> timedelta:
        return sum((lvl.window for lvl in self.ladder), timedelta())


class BusinessHours(_Strict):
    timezone: str = "UTC"
    start: time = time(9, 0)
    end: time = time(17, 0)
    days: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    holidays: tuple[date, ...] = ()

    _tz = field_validator("timezone")(_check_timezone)

    @model_validator(mode="after")
    def _sane(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("business hours end must be after start")
        if not self.days:
            raise ValueError("at least one business day is needed")
        return self


class Channels(_Strict):
    incidents: str = "#incidents"
    stakeholders: str = "#stakeholders"
    engineering: str = "#engineering"
    email: str = "engineering-alerts@company.com"


class SeverityMapping(_Strict):
    """How alert fields become P0-P3 (PagerDuty severities by default)."""

    by_alert_severity: dict[str, Severity] = Field(
        default_factory=lambda: {
            "critical": Severity.P1,
            "error": Severity.P2,
            "warning": Severity.P3,
            "info": Severity.P3,
        }
    )
    # A label or custom-details field holding P0-P3 directly wins over the mapping.
    override_fields: tuple[str, ...] = ("priority", "severity")
    default: Severity = Severity.P2

    def map(self, alert_severity: str | None, fields: dict[str, str]) -> Severity:
        for key in self.override_fields:
            value = str(fields.get(key, "")).strip().upper()
            if value in Severity.__members__:
                return Severity(value)
        if alert_severity:
            mapped = self.by_alert_severity.get(alert_severity.strip().lower())
            if mapped is not None:
                return mapped
            if alert_severity.strip().upper() in Severity.__members__:
                return Severity(alert_severity.strip().upper())
        return self.default


IntegrationKind = Literal["pagerduty", "alertmanager", "grafana", "generic"]


# Incidents opened by hand (POST /incidents, Slack) use this scope in their workflow ids.
RESERVED_INTEGRATION_NAMES = frozenset({"direct"})


class Integration(_Strict):
    """An alert source. Its secret lives in the data dir, never in the policy file.

    ``service`` is the service every incident it opens belongs to (one integration key per
    service, as in PagerDuty). ``acknowledge_events`` (PagerDuty only): whether an
    ``acknowledge`` event acknowledges the incident, attributed to the integration.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    kind: IntegrationKind
    service: str = Field(min_length=1, max_length=200)
    default_severity: Severity | None = None
    auto_resolve: bool = True
    acknowledge_events: bool = True
    severity_mapping: SeverityMapping | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_INTEGRATION_NAMES:
            raise ValueError(f"{value!r} is reserved (incidents opened by hand); pick another")
        return value

    @field_validator("service")
    @classmethod
    def _service_text(cls, value: str) -> str:
        if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("service must be plain text without surrounding spaces")
        return value

    @field_validator("acknowledge_events")
    @classmethod
    def _acks_for_pagerduty(cls, value: bool, info: ValidationInfo) -> bool:
        # Only ``false`` is refused: a stored snapshot carries the default ``true`` for all.
        kind = info.data.get("kind")
        if not value and kind is not None and kind != "pagerduty":
            raise ValueError(
                f"applies to pagerduty integrations only ({kind} sends no acknowledgements)"
            )
        return value


def _plain_service(value: str) -> str:
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("service must be plain text without surrounding spaces")
    return value


class HeartbeatMonitor(_Strict):
    """A dead-man's switch: a job pings ``POST /heartbeats/<name>`` at least every ``period``.

    No ping for ``period + grace`` opens an incident for ``service`` at ``severity`` (one
    per monitor, however long the silence lasts); the next ping resolves it. The monitor
    is armed by its first ping. Its token lives in the data dir, never in the policy file.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    period: Duration
    grace: Duration = timedelta(0)
    service: str = Field(min_length=1, max_length=200)
    severity: Severity = Severity.P2

    _service = field_validator("service")(_plain_service)

    @model_validator(mode="after")
    def _positive(self) -> HeartbeatMonitor:
        if self.period < timedelta(seconds=1):
            raise ValueError("period must be at least 1s")
        if self.grace < timedelta(0):
            raise ValueError("grace must not be negative")
        if self.period % timedelta(seconds=1) or self.grace % timedelta(seconds=1):
            raise ValueError("period and grace must be whole seconds")
        return self


class MitigationPolicy(_Strict):
    # A proposal nobody approves within this long expires (propose again to retry).
    approval_expires_after: Duration = timedelta(minutes=30)


class PostMortemPolicy(_Strict):
    review_within: Duration = timedelta(hours=48)
    review_time: time = time(14, 0)
    reminder_every: Duration = timedelta(days=1)


class HandoffPolicy(_Strict):
    """The weekly handoff (``domain.handoff``): one run per rotation at its handoff time."""

    enabled: bool = True
    # A test page not acknowledged within this long is reported as "routing not verified".
    test_page_window: Duration = timedelta(minutes=30)
    # An integration that has sent nothing for this long is a finding in the report.
    silent_after: Duration = timedelta(days=7)
    # How far back the report's "Recent changes" reaches.
    changes_since: Duration = timedelta(days=7)


class FollowUpPolicy(_Strict):
    """The seed's "Follow-up: Weekly review in team meetings": a digest each week, at
    ``at`` on ``weekday`` in the business-hours time zone."""

    enabled: bool = True
    weekday: Weekday = "monday"
    at: time = time(10, 0)


class ReportPolicy(_Strict):
    """The seed's monthly review: the last month's report on the first of each month, at
    ``at`` in the business-hours time zone, to #engineering and the channels' email."""

    enabled: bool = True
    at: time = time(9, 0)


class Policy(_Strict):
    team: str = "MadPlan"
    severities: dict[Severity, SeverityPolicy]
    roster: Roster
    business_hours: BusinessHours = BusinessHours()
    channels: Channels = Channels()
    runbooks: dict[str, Runbook] = Field(default_factory=dict)
    severity_mapping: SeverityMapping = SeverityMapping()
    integrations: tuple[Integration, ...] = ()
    postmortem: PostMortemPolicy = PostMortemPolicy()
    mitigations: MitigationPolicy = MitigationPolicy()
    heartbeats: tuple[HeartbeatMonitor, ...] = ()
    handoff: HandoffPolicy = HandoffPolicy()
    followup: FollowUpPolicy = FollowUpPolicy()
    reports: ReportPolicy = ReportPolicy()

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        missing = [s.value for s in Severity if s not in self.severities]
        if missing:
            raise ValueError(f"severities: missing {', '.join(missing)}")
        names = [i.name for i in self.integrations]
        if len(names) != len(set(names)):
            raise ValueError("integrations: duplicate name")
        beats = [h.name for h in self.heartbeats]
        if len(beats) != len(set(beats)):
            raise ValueError("heartbeats: duplicate name")
        return self

    def for_severity(self, severity: Severity) -> SeverityPolicy:
        return self.severities[severity]

    def integration(self, name: str) -> Integration | None:
        return next((i for i in self.integrations if i.name == name), None)

    def heartbeat(self, name: str) -> HeartbeatMonitor | None:
        return next((h for h in self.heartbeats if h.name == name), None)
