"""The change feed: deployments and config changes, keyed by service.

CI/CD reports them (``POST /changes``, or PagerDuty's Change Events API at
``/v2/change/enqueue``); the ``changes`` runbook check and the handoff read them back, to
answer the seed's "check recent deployments/changes".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ChangeSource = Literal["pagerduty", "api", "cli"]


class ChangeLink(BaseModel):
    href: str = Field(min_length=1, max_length=2000)
    text: str | None = Field(default=None, max_length=500)


class Change(BaseModel):
    """One change as stored. ``change_id`` is the caller's key: a repeat is not a new change."""

    change_id: str = Field(min_length=1, max_length=255)
    service: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=1024)
    source: ChangeSource
    who: str | None = Field(default=None, max_length=200)
    at: datetime  # when the change happened (the event's timestamp)
    received_at: datetime
    integration: str | None = None
    links: list[ChangeLink] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
