"""Workflow ids and human incident ids."""

from __future__ import annotations

import hashlib
import re
from datetime import date

_SAFE = re.compile(r"^[A-Za-z0-9._:@/-]{1,200}$")


def incident_workflow_id(dedup_key: str, integration: str | None = None) -> str:
    """Alerts with the same (integration, dedup key) join the same open incident."""
    scope = integration or "direct"
    if _SAFE.match(dedup_key):
        return f"incident/{scope}/{dedup_key}"
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
    return f"incident/{scope}/sha256-{digest}"


def format_incident_id(day: date, sequence: int) -> str:
    return f"INC-{day.isoformat()}-{sequence:03d}"


_INCIDENT_ID = re.compile(r"^INC-(\d{4}-\d{2}-\d{2})-(\d{3,})$")


def parse_incident_id(text: str) -> tuple[date, int] | None:
    match = _INCIDENT_ID.match(text.strip())
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1)), int(match.group(2))
    except ValueError:
        return None


def postmortem_workflow_id(incident_id: str) -> str:
    return f"postmortem/{incident_id}"
