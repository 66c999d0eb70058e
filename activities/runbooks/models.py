"""What the runbook activities take and give (payloads: pydantic, through Temporal)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.runbooks import Check, Mitigation

# Caps on what a result carries into the workflow's history, the timeline and the ticket.
REQUEST_CHARS = 12_000
EXCERPT_CHARS = 2000

MitigationStatus = Literal["succeeded", "failed", "unknown"]


class RunCheck(BaseModel):
    """Run one check of a service's runbook."""

    incident_id: str
    service: str  # the runbook's service (the ``changes`` check's default)
    check: Check


class RunMitigation(BaseModel):
    """Carry out one approved (or low-risk) mitigation action, once."""

    incident_id: str
    service: str
    action: str  # the key in the runbook's ``mitigations``, e.g. ``rollback``
    mitigation: Mitigation
    proposed_by: str
    approved_by: str | None = None
    # Stable across retries and restarts of the activity, e.g. ``INC-…:mitigation:1``; sent
    # to the target as ``Idempotency-Key`` and the key of the ``mitigation_runs`` row.
    idempotency_key: str = Field(min_length=1, max_length=255)


class MitigationResult(BaseModel):
    """What running a mitigation sent and what came back (the audit record).

    The same fields as ``domain.runbooks.ActionOutcome``, plus ``ok``."""

    ok: bool
    status: MitigationStatus
    summary: str = Field(max_length=500)  # one line: "202 Accepted", "exit 1", "unreachable: …"
    # What went out: method, URL, header names (values from the environment are never
    # recorded) and the body as sent; for a command, its argv. Never secrets.
    request: str = Field(default="", max_length=REQUEST_CHARS)
    response_status: int | None = None  # the HTTP status, or a command's exit code
    response_excerpt: str | None = Field(default=None, max_length=EXCERPT_CHARS)
    attempts: int = 1  # attempts at this idempotency key (a retry after a crash counts)
    started_at: datetime | None = None
    finished_at: datetime | None = None
