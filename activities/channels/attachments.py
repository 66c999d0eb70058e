"""A chart that travels with a notification: the monthly report's main chart, uploaded to
Slack with the summary as its comment (``SlackSender``). Other channels ignore it; the
outbox records the text alone."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from activities.models import Notification


class Chart(BaseModel):
    # bytes as base64 in JSON (a PNG is not UTF-8), should the note ever cross Temporal.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    filename: str  # e.g. incidents-by-severity-2026-11.png
    title: str
    png: bytes


class NotificationWithChart(Notification):
    chart: Chart | None = None


def chart_of(note: Notification) -> Chart | None:
    return note.chart if isinstance(note, NotificationWithChart) else None


def chart_state_key(idempotency_key: str) -> str:
    """The ledger value recording the chart's one try for a delivery key:
    ``{"state": "uploading" | "sharing" | "shared" | "failed", "file_id": ..., "detail": ...}``."""
    return f"slack:chart:{idempotency_key}"
