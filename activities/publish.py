"""Local side effects of one workflow step, in one local activity: outbox rows and the ticket.

Used while no real channel is configured (the embedded default), when "delivering" a
notification is an idempotent SQLite insert and the ticket a file write on this worker: a
normal activity per notification would cost a server round trip each for local work.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.documents import DocumentActivities
from activities.models import Published, PublishLocally
from activities.notify import NotifyActivities


class PublishActivities:
    def __init__(self, notify: NotifyActivities, documents: DocumentActivities) -> None:
        self._notify = notify
        self._documents = documents

    @activity.defn(name="Notify and write ticket")
    async def publish_locally(self, batch: PublishLocally) -> Published:
        # In order, each idempotent by its key: a retried batch never notifies twice.
        if not self._notify.settings.enabled_channels():
            return await asyncio.to_thread(self._write_all, batch)  # one hop for the lot
        # Channels were configured after this incident opened: deliver through them.
        results = [await self._notify.deliver_notification(note) for note in batch.notifications]
        written = None
        if batch.document is not None:
            written = await asyncio.to_thread(self._documents.write_document, batch.document)
        return Published(deliveries=results, document=written)

    def _write_all(self, batch: PublishLocally) -> Published:
        results = self._notify.record_all_in_outbox(batch.notifications)
        written = None
        if batch.document is not None:
            written = self._documents.write_document(batch.document)
        return Published(deliveries=results, document=written)
