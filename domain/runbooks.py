"""Runbooks as data: each service's diagnostic checks and mitigation actions.

One YAML file per service sits beside the policy (``runbooks/<service>.yaml``; the built-in
ones are ``domain/runbooks/``). The checks run as activities at the start of every P0-P2
incident and again on demand; each gives a :class:`CheckResult`. Mitigations are actions on
the team's own systems, run once approved (see ``domain.mitigations``).

Nothing here is ever built from alert data: URLs, queries and commands are exactly what the
file says. Secrets are named environment variables (``headers_from_env``), never values.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.durations import Duration

_NAME = r"^[a-z0-9][a-z0-9_-]*$"
_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    return value


class _Check(_Strict):
    name: str = Field(pattern=_NAME, max_length=64)
    title: str = Field(default="", max_length=200)
    timeout: Duration = timedelta(seconds=10)

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=10):
            raise ValueError("timeout must be between 0s and 10m")
        return value

    @property
    def label(self) -> str:
        return self.title or self.name


class HttpCheck(_Check):
    """``curl -f URL``: the status, the latency, and optionally one JSON value."""

    kind: Literal["http"] = "http"
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: tuple[int, ...] = (200,)
    max_latency: Duration | None = None
    # ``database`` or ``database.status``: the seed's ``jq '.database'``.
    json_path: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    # The value ``json_path`` must show (as reported: an object by its ``status``), e.g. ``up``.
    expect_value: str | None = Field(default=None, max_length=200)
    headers_from_env: dict[str, str] = Field(default_factory=dict)

    _url = field_validator("url")(_check_url)

    @field_validator("headers_from_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env_names(value)

    @model_validator(mode="after")
    def _value_needs_path(self) -> HttpCheck:
        if self.expect_value is not None and self.json_path is None:
            raise ValueError("expect_value needs a json_path")
        return self


class StatusPageCheck(_Check):
    """An Atlassian Statuspage (``/api/v2/status.json`` and ``components.json``)."""

    kind: Literal["status_page"] = "status_page"
    url: str  # the page's base URL, e.g. https://status.sentry.io

    _url = field_validator("url")(_check_url)


class PrometheusCheck(_Check):
    """A PromQL instant query; each series is compared with the threshold."""

    kind: Literal["prometheus"] = "prometheus"
    query: str = Field(min_length=1, max_length=2000)
    above: float | None = None  # failed when a value is above this
    below: float | None = None  # failed when a value is below this
    unit: str = ""

    @model_validator(mode="after")
    def _threshold(self) -> PrometheusCheck:
        if self.above is None and self.below is None:
            raise ValueError("give a threshold: `above` or `below`")
        return self


class ChangesCheck(_Check):
    """The service's recent deployments and config changes, from the change feed."""

    kind: Literal["changes"] = "changes"
    within: Duration = timedelta(hours=24)
    service: str | None = None  # default: the runbook's service


class CommandCheck(_Check):
    """A command with arguments, no shell. Runs only where the worker allows commands."""

    kind: Literal["command"] = "command"
    argv: tuple[str, ...] = Field(min_length=1)
    max_output: int = Field(default=2000, ge=100, le=2000)  # results keep 2000 characters


class ManualCheck(_Check):
    """A checklist item for a person, shown with the results."""

    kind: Literal["manual"] = "manual"
    text: str = Field(min_length=1, max_length=1000)


Check = Annotated[
    HttpCheck | StatusPageCheck | PrometheusCheck | ChangesCheck | CommandCheck | ManualCheck,
    Field(discriminator="kind"),
]


class Risk(StrEnum):
    """How much approval an action needs before it runs."""

    LOW = "low"  # runs when proposed
    MEDIUM = "medium"  # another roster person approves, or the proposer confirms
    HIGH = "high"  # another roster person must approve (two-person rule)


class HttpAction(_Strict):
    url: str
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    # Rendered with the incident id, service, action and proposer only (never alert text).
    body: str | None = Field(default=None, max_length=10_000)
    content_type: str = "application/json"
    expect_status: tuple[int, ...] = (200, 201, 202, 204)
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=30)

    _url = field_validator("url")(_check_url)

    @field_validator("headers_from_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env_names(value)


class Mitigation(_Strict):
    """One of the seed's mitigations (rollback, scale, failover, ...) as an action."""

    title: str = Field(min_length=1, max_length=200)
    risk: Risk = Risk.HIGH
    http: HttpAction | None = None
    command: CommandCheck | None = None  # ``name``/``argv``/``timeout``; needs commands allowed

    @model_validator(mode="after")
    def _one_action(self) -> Mitigation:
        if (self.http is None) == (self.command is None):
            raise ValueError("give exactly one of `http` or `command`")
        return self

    @property
    def timeout(self) -> timedelta:
        if self.http is not None:
            return self.http.timeout
        assert self.command is not None
        return self.command.timeout


class Link(_Strict):
    title: str = Field(min_length=1, max_length=200)
    url: str

    _url = field_validator("url")(_check_url)


class Runbook(_Strict):
    title: str = Field(min_length=1, max_length=200)
    url: str | None = None  # the runbook document
    links: tuple[Link, ...] = ()  # dashboards and documents, shown with the results
    checks: tuple[Check, ...] = ()
    mitigations: dict[str, Mitigation] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> Runbook:
        names = [c.name for c in self.checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"checks: duplicate name {', '.join(dupes)}")
        for key in self.mitigations:
            if not _valid_name(key):
                raise ValueError(f"mitigations: {key!r} must be lowercase letters, digits, -, _")
        return self

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def automatic(self) -> tuple[Check, ...]:
        """What runs by itself: everything but the manual checklist."""
        return tuple(c for c in self.checks if c.kind != "manual")


def _valid_name(name: str) -> bool:
    return re.fullmatch(_NAME, name) is not None


def _check_env_names(value: dict[str, str]) -> dict[str, str]:
    for header, env in value.items():
        if re.fullmatch(_ENV_NAME, env) is None:
            raise ValueError(
                f"{header}: {env!r} must be the NAME of an environment variable (the secret "
                "itself never goes in the runbook)"
            )
    return value


# ---- results ---------------------------------------------------------------------------


class Outcome(StrEnum):
    OK = "ok"  # the check passed
    FAILED = "failed"  # the check ran and found a problem
    ERROR = "error"  # the check could not run (unreachable, timed out, not allowed)
    MANUAL = "manual"  # a person has to look


class CheckResult(BaseModel):
    """One check's result, as shown on the timeline, the ticket and in pages."""

    name: str
    kind: str
    outcome: Outcome
    summary: str = Field(max_length=500)  # one line: "503 in 120 ms", "degraded: API"
    value: str | None = Field(default=None, max_length=2000)  # JSON path value, output
    latency_ms: int | None = None
    started_at: datetime | None = None


class RunbookRun(BaseModel):
    """One run of a service's checks (a child workflow of the incident)."""

    number: int  # 1-based within the incident
    reason: str  # "incident opened", "asked by carol", "verify rollback"
    requested_by: str | None = None
    checks: list[str] = Field(default_factory=list)  # names; empty: every check
    verifies: int | None = None  # the mitigation proposal this run verifies
    started_at: datetime
    finished_at: datetime | None = None
    results: list[CheckResult] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.outcome in (Outcome.OK, Outcome.MANUAL) for r in self.results)


def digest(results: list[CheckResult]) -> str:
    """The one line pages carry: ``health 503 · db ok · deploys v412 by alice 12m ago``.

    Each check's ``summary`` is written short for this line; manual items are left out.
    """
    return " · ".join(f"{r.name} {r.summary}" for r in results if r.outcome != Outcome.MANUAL)


# ---- mitigation proposals --------------------------------------------------------------


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for approval
    RUNNING = "running"  # approved (or low risk): the action is being carried out
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the worker stopped during a command: not run again
    DECLINED = "declined"
    EXPIRED = "expired"


class ActionOutcome(BaseModel):
    """What running a mitigation sent and what came back (the audit record)."""

    status: Literal["succeeded", "failed", "unknown"]
    summary: str = Field(max_length=500)
    request: str = Field(default="", max_length=12_000)  # method, URL, body; never secrets
    response_status: int | None = None
    response_excerpt: str | None = Field(default=None, max_length=2000)
    attempts: int = 1


class MitigationProposal(BaseModel):
    number: int  # 1-based within the incident: ``firewatch approve INC-... 1``
    action: str  # the key in the runbook's ``mitigations``
    title: str
    risk: Risk
    proposed_by: str
    proposed_at: datetime
    reason: str | None = None
    expires_at: datetime | None = None  # only while waiting for approval
    status: ProposalStatus = ProposalStatus.PROPOSED
    decided_by: str | None = None  # who approved or declined
    decided_at: datetime | None = None
    decision_reason: str | None = None
    finished_at: datetime | None = None
    outcome: ActionOutcome | None = None
    verify_run: int | None = None  # the diagnostics run started to verify it

    @property
    def waiting(self) -> bool:
        return self.status == ProposalStatus.PROPOSED
