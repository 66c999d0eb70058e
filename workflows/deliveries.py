"""Notifications in flight on real channels: each its own activity, none waiting on another.

The incident loop starts a delivery and moves on; the result is recorded when it comes
back. A delivery that becomes moot while it is still in flight (a page whose incident was
acknowledged, a reminder after an update) is cancelled and recorded as dropped, so a
provider outage can delay a page but never make it arrive after it stopped mattering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.heartbeating import HEARTBEAT_TIMEOUT
    from activities.models import CHANNEL_TITLES, DeliveryResult, Notification
    from activities.notify import NotifyActivities
    from domain.delivery import moot_reason
    from domain.incident import IncidentState
    from domain.messages import MessageKind

# A page that cannot go out on one channel falls back to the next within the activity
# (activities.notify); the activity as a whole keeps trying for a while, because a page
# that is late but still wanted is worth sending.
KEEP_TRYING = timedelta(minutes=30)
# The first retry comes soon: after a dead worker's heartbeat timeout, the page should not
# wait the SDK's default second more before another worker sends it.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=300), maximum_interval=timedelta(seconds=30)
)

Log = Callable[[str, str], None]


@dataclass
class _InFlight:
    note: Notification
    kind: MessageKind
    after: asyncio.Future[None] | None = None  # the #incidents message, for its thread replies
    dropped: str | None = None  # why it was cancelled, once it was
    task: asyncio.Future[None] = field(init=False)


class Deliveries:
    """The incident's notifications on their way, keyed by idempotency key."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._inflight: dict[str, _InFlight] = {}
        self.problem: str | None = None  # the latest delivery failure, for the UI details
        # The initial alert in #incidents becomes the incident's Slack message: its thread
        # replies and the message sync wait for it (and only for it).
        self.incident_message: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def start(self, note: Notification, kind: MessageKind) -> None:
        if note.idempotency_key in self._inflight:
            return
        first = self.incident_message
        after = first if note.channel_role == "incidents" and first and not first.done() else None
        flight = _InFlight(note, kind, after)
        self._inflight[note.idempotency_key] = flight
        flight.task = asyncio.ensure_future(self._run(flight))
        if kind == MessageKind.INITIAL_ALERT and note.channel_role == "incidents":
            self.incident_message = flight.task

    def drop_moot(self, state: IncidentState) -> None:
        """Cancel every delivery in flight that ``state`` has made pointless."""
        for flight in self._inflight.values():
            if flight.dropped is not None:
                continue
            reason = moot_reason(flight.kind, flight.note.scheduled_at, state)
            if reason is not None:
                flight.dropped = reason
                flight.task.cancel()

    def record(self, note: Notification, result: DeliveryResult) -> None:
        """Contact-method fallback (sms → slack → email): every failure goes on the timeline."""
        who = _who(note)
        tried = [a for a in result.attempts if a.status != "skipped"]
        for i, attempt in enumerate(tried):
            if attempt.status == "failed":
                then = (
                    f"falling back to {tried[i + 1].channel}" if i + 1 < len(tried) else "none left"
                )
                text = (
                    f"{CHANNEL_TITLES[attempt.channel]} to {who} failed: {attempt.detail}; {then}"
                )
                self.problem = f"{text} ({note.kind})"
                self._log("delivery_failed", text)

    async def _run(self, flight: _InFlight) -> None:
        note = flight.note
        try:
            if flight.after is not None:
                await asyncio.wait(
                    [flight.after]
                )  # not awaited directly: a drop must not cancel it
            result = await workflow.execute_activity_method(
                NotifyActivities.deliver_notification,
                note,
                # People's notifications have a task queue (and worker slots) of their own.
                task_queue=_pages_queue() if note.person is not None else None,
                summary=f"{note.kind.replace('_', ' ')} → {note.recipient}",
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=KEEP_TRYING,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,  # a dead worker's page is retried fast
                retry_policy=RETRY,
                # "Withdrew" is logged once no attempt can still be talking to the provider.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, asyncio.CancelledError) as err:
            if flight.dropped is not None:
                what = note.kind.replace("_", " ")
                text = f"Withdrew {what} to {_who(note)}, no longer needed: {flight.dropped}"
                self._log("delivery_dropped", text)
            else:
                cause = err.cause if isinstance(err, ActivityError) else err
                self._log(
                    "delivery_failed", f"Could not deliver {note.kind} to {note.recipient}: {cause}"
                )
            return
        finally:
            self._inflight.pop(note.idempotency_key, None)
        self.record(note, result)


def _pages_queue() -> str:
    return f"{workflow.info().task_queue}-pages"  # worker.pages_queue


def _who(note: Notification) -> str:
    return note.person.label if note.person is not None else note.recipient
