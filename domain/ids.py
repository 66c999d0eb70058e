"""Workflow ids and human incident ids."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, date, datetime

_SAFE = re.compile(r"^[A-Za-z0-9._:@/-]{1,200}$")
_WORD = re.compile(r"[a-z0-9]+")
SERVICE_SLUG_MAX = 40
SUMMARY_SLUG_MAX = 60


def incident_workflow_id(dedup_key: str, integration: str | None = None) -> str:
    """Alerts with the same (integration, dedup key) join the same open incident."""
    scope = integration or "direct"
    if _SAFE.match(dedup_key):
        return f"incident/{scope}/{dedup_key}"
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
    return f"incident/{scope}/sha256-{digest}"


def slug(text: str, limit: int) -> str:
    """Lowercase ASCII words joined by ``-``, cut at a word boundary: ``API p99 > 5s`` ->
    ``api-p99-5s``. Accents are dropped (``Zahlungsdienst überlastet`` ->
    ``zahlungsdienst-uberlastet``), other scripts vanish; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = ""
    for word in _WORD.findall(ascii_text.lower()):
        joined = f"{out}-{word}" if out else word
        if len(joined) > limit:
            return out or word[:limit]
        out = joined
    return out


def readable_dedup_key(
    service: str, summary: str, *, nonce: str, at: datetime | None = None
) -> str:
    """The dedup key of an incident opened without one, so that its workflow id reads in the
    Temporal UI: ``api-2026-11-28T0915Z-api-p99-5s-3f9c2a17`` (service, UTC minute if ``at``
    is given, summary, nonce). The caller's ``nonce`` keeps it unique per incident (random,
    or the sender's own id where a retry must join the same incident). Up to 118 characters
    of ``[a-z0-9TZ-]`` come before the nonce, so with a short nonce of the same characters
    ``incident_workflow_id`` keeps the key as it is."""
    stamp = ""
    if at is not None:
        u = at.astimezone(UTC)
        stamp = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}{u.minute:02d}Z"
    service_part = slug(service, SERVICE_SLUG_MAX) or "incident"
    parts = (service_part, stamp, slug(summary, SUMMARY_SLUG_MAX), nonce)
    return "-".join(part for part in parts if part)


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
