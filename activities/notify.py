"""Notifications: one interface, an idempotency key per (incident, step, recipient, channel).

The outbox is the durable record of every delivery. Recording the key and delivering
happen in one SQLite insert, so a retried activity never notifies twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from temporalio import activity

from activities.models import DeliveryResult, Notification
from activities.store import Store

log = logging.getLogger(__name__)


class NotifyActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn
    def deliver_notification(self, note: Notification) -> DeliveryResult:
        now = datetime.now(UTC)
        fresh = self._store.record_notification(
            {
                "idempotency_key": note.idempotency_key,
                "incident_id": note.incident_id,
                "workflow_id": note.workflow_id,
                "kind": note.kind,
                "recipient": note.recipient,
                "channel": note.channel,
                "subject": note.subject,
                "text": note.text,
                "scheduled_at": note.scheduled_at.isoformat(),
                "recorded_at": now.isoformat(),
            }
        )
        if fresh:
            log.info("outbox: %s -> %s: %s", note.kind, note.recipient, note.subject)
        return DeliveryResult(
            idempotency_key=note.idempotency_key,
            channel=note.channel,
            delivered=fresh,
            delivered_at=now,
        )
