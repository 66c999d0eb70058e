"""Carrying a step's decisions out: messages rendered and sent, the ticket, the Slack message.

With only the outbox configured (the embedded default) a step's notifications and the
ticket are one local write. With real channels every notification is its own activity
(``deliveries``), the ticket write runs beside them (one at a time, of the newest version)
and the #incidents Slack message is synced beside the ladder (``slack_sync``): nothing
cosmetic is ever in front of a page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.channels.snapshot import incident_snapshot
    from activities.documents import DocumentActivities
    from activities.models import Notification, PublishLocally, WriteDocument
    from activities.publish import PublishActivities
    from domain.delivery import moot_reason
    from domain.incident import IncidentState
    from domain.messages import MessageKind
    from domain.policy import Policy
    from domain.records import record_of
    from domain.templates import render_incident_report, render_message
    from domain.transitions import Outgoing
    from workflows.deliveries import Deliveries
    from workflows.slack_sync import SlackSync

QUICK = timedelta(seconds=30)
QUICK_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


class EffectSender:
    def __init__(self, log: Callable[[str, str], None]) -> None:
        self._log = log
        self.deliveries = Deliveries(log)
        self._slack = SlackSync(log)
        # One ticket write in flight; steps meanwhile leave only their newest version.
        self._ticket_writer: asyncio.Future[None] | None = None
        self._ticket_wanted: WriteDocument | None = None

    @property
    def busy(self) -> bool:
        """Something is still on its way (a channel may be down)."""
        writing = self._ticket_writer is not None and not self._ticket_writer.done()
        return self.deliveries.busy or self._slack.busy or writing

    async def send(
        self, st: IncidentState, policy: Policy, messages: list[Outgoing], ticket: bool
    ) -> None:
        now = workflow.now()
        notes = [note for out in messages if (note := self._render(st, policy, out)) is not None]
        document = None
        if ticket:
            st.ticket_version += 1
            st.ticket_written_at = now
            document = WriteDocument(
                kind="ticket",
                incident_id=st.incident_id or "",
                version=st.ticket_version,
                markdown=render_incident_report(st, policy, now),
                record=record_of(st, policy.for_severity(st.severity).postmortem_required),
            )
        if st.local_delivery:
            await self._publish_locally(notes, document)
        else:
            for notification, kind in notes:
                self.deliveries.start(notification, kind)
            if document is not None:
                self._ticket_wanted = document
                if self._ticket_writer is None or self._ticket_writer.done():
                    self._ticket_writer = asyncio.ensure_future(self._write_tickets())
        if st.slack_message:
            snapshot = incident_snapshot(st, policy, now)
            self._slack.want(snapshot, after=self.deliveries.incident_message)

    def _render(
        self, st: IncidentState, policy: Policy, out: Outgoing
    ) -> tuple[Notification, MessageKind] | None:
        """A decided message as a notification, or None (and a timeline entry) if moot."""
        now = workflow.now()
        due = out.due or now
        kind = out.params.kind
        moot = moot_reason(kind, due, st)
        if moot is not None:
            who = out.person.label if out.person is not None else out.recipient
            what = kind.value.replace("_", " ")
            self._log("delivery_dropped", f"Did not send {what} to {who}, no longer needed: {moot}")
            return None
        message = render_message(out.params, st, policy, now)
        roles: dict[str, Literal["incidents", "stakeholders"]] = {
            policy.channels.incidents: "incidents",
            policy.channels.stakeholders: "stakeholders",
        }
        note = Notification(
            idempotency_key=f"{st.incident_id}:{out.step}:{out.recipient}:outbox",
            incident_id=st.incident_id or "",
            workflow_id=st.workflow_id,
            kind=kind.value,
            recipient=out.recipient,
            person=out.person,
            subject=message.subject,
            text=message.text,
            scheduled_at=due,
            channel_role=None if out.person is not None else roles.get(out.recipient),
            decision_for=out.params.proposal if out.params.event == "proposed" else None,
        )
        return note, kind

    async def _publish_locally(
        self, notes: list[tuple[Notification, MessageKind]], document: WriteDocument | None
    ) -> None:
        if not notes and document is None:
            return
        batch = [note for note, _ in notes]
        published = await workflow.execute_local_activity_method(
            PublishActivities.publish_locally,
            PublishLocally(notifications=batch, document=document),
            summary=", ".join(f"{n.kind.replace('_', ' ')} → {n.recipient}" for n in batch)
            or "Update ticket",
            start_to_close_timeout=QUICK,
            retry_policy=QUICK_RETRY,
        )
        for note, result in zip(batch, published.deliveries, strict=True):
            self.deliveries.record(note, result)

    async def _write_tickets(self) -> None:
        while self._ticket_wanted is not None:
            document, self._ticket_wanted = self._ticket_wanted, None
            await self._write_ticket(document)

    async def _write_ticket(self, document: WriteDocument) -> None:
        try:
            await workflow.execute_activity_method(
                DocumentActivities.write_document,
                document,
                summary=f"Update ticket (version {document.version})",
                start_to_close_timeout=QUICK,
                retry_policy=QUICK_RETRY,
            )
        except ActivityError as err:
            self._log("delivery_failed", f"Could not write the ticket: {err.cause}")
