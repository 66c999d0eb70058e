"""Notifications: one interface, an idempotency key per (incident, step, recipient, channel).

With no channel configured (the embedded default) every notification goes to the outbox,
as before: recording the key and "delivering" are one SQLite insert.

With real channels configured (``activities.channels.settings``):

* A note for a person walks ``person.contact_order`` (the seed: phone/SMS, then Slack,
  then email as backup), skipping channels that are off or for which the person has no
  address. The first channel that delivers ends the walk; a permanent failure (bad
  number, channel not found, auth failure) moves on to the next method. A transient
  failure (rate limit, 5xx) fails the activity retryably, honouring the provider's
  Retry-After through ``next_retry_delay``; after a few such attempts the walk moves on
  too, so a page never waits half an hour for one provider.
* A note for a channel (#incidents, #stakeholders) goes to Slack; #incidents notes go
  into the thread of the incident's single message (see slack_incident_message).
* Each channel has its own key, ``incident:step:recipient:<channel>``, recorded in the
  ledger before the call (pending) and after it (sent / failed). A retried or re-run
  activity skips channels already sent or failed, and for a pending one asks the
  provider whether the message exists before sending again (``channels.once``).
* Every outcome is also an outbox row (channel and status), so ``firewatch outbox``
  keeps listing every delivery, failures included.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels.base import TransientDeliveryError
from activities.channels.email import EmailSender
from activities.channels.ledger import Ledger
from activities.channels.once import Outcome, deliver_once
from activities.channels.settings import ChannelSettings, settings_from_env
from activities.channels.slack import SlackSender
from activities.channels.twilio_sms import MAX_LOCAL_WAIT_S, TwilioSender
from activities.heartbeating import HEARTBEAT_TIMEOUT, heartbeating
from activities.models import (
    CHANNEL_TITLES,
    ChannelName,
    DeliveryAttempt,
    DeliveryResult,
    Notification,
)
from activities.store import Store
from domain.policy import Person

log = logging.getLogger(__name__)

# A transient failure (rate limit, 5xx, unreachable, hanging) moves the walk on to the next
# contact method after this many tries or this long since the first, whichever comes first:
# a page reaches a working channel within about a minute whatever one provider does.
TRANSIENT_ATTEMPTS_BEFORE_FALLBACK = 4
FALL_BACK_AFTER = timedelta(seconds=30)


def channel_key(outbox_key: str, channel: str) -> str:
    """``INC:step:recipient:outbox`` → ``INC:step:recipient:<channel>``."""
    base = outbox_key.removesuffix(":outbox")
    return f"{base}:{channel}"


def person_address(person: Person, channel: str) -> str | None:
    if channel in ("sms", "voice"):
        return person.phone
    if channel == "email":
        return person.email
    if channel == "slack":
        if person.slack_user_id:
            return person.slack_user_id
        return f"email:{person.email}" if person.email else None
    return None


class NotifyActivities:
    def __init__(self, store: Store, settings: ChannelSettings | None = None) -> None:
        self._store = store
        self._settings = settings if settings is not None else settings_from_env()
        self._enabled = self._settings.enabled_channels()
        self._ledger = Ledger(store.database) if self._enabled else None
        # Leave time for the slowest call (HTTP timeout + our throttle) before a pending
        # record is taken to mean "that attempt died".
        self._lease_s = self._settings.http_timeout + MAX_LOCAL_WAIT_S + 5.0
        # A retry of this activity takes its dead attempt's claim over after this long.
        self._handover_s = HEARTBEAT_TIMEOUT.total_seconds()

    @property
    def settings(self) -> ChannelSettings:
        return self._settings

    # ---- the activity ------------------------------------------------------------------

    @activity.defn(name="Notify")
    async def deliver_notification(self, note: Notification) -> DeliveryResult:
        route = self._route(note)
        if not any(address for _, address in route):
            return await asyncio.to_thread(self.record_in_outbox, note)
        return await heartbeating(self._deliver(note, route))

    # ---- outbox only (the embedded default) ------------------------------------------------

    def record_in_outbox(self, note: Notification) -> DeliveryResult:
        return self.record_all_in_outbox([note])[0]

    def record_all_in_outbox(self, notes: list[Notification]) -> list[DeliveryResult]:
        """A step's notifications in one transaction: one durable commit, not one per note."""
        now = datetime.now(UTC)
        rows = [self._row(note, note.idempotency_key, "outbox", now) for note in notes]
        results = []
        for note, fresh in zip(notes, self._store.record_notifications(rows), strict=True):
            if fresh:
                log.info("outbox: %s -> %s: %s", note.kind, note.recipient, note.subject)
            results.append(
                DeliveryResult(
                    idempotency_key=note.idempotency_key,
                    channel="outbox",
                    delivered=fresh,
                    delivered_at=now,
                )
            )
        return results

    # ---- real channels ----------------------------------------------------------------------

    def _route(self, note: Notification) -> list[tuple[ChannelName, str | None]]:
        """(channel, address) in order; address None = that channel cannot reach them."""
        if not self._enabled:
            return []
        if note.person is not None:
            route: list[tuple[ChannelName, str | None]] = []
            for method in note.person.contact_order:
                if method in self._enabled:
                    route.append((method, person_address(note.person, method)))
            return route
        if note.channel_role == "email":  # a list address, such as engineering-alerts@
            return [("email", note.recipient)] if "email" in self._enabled else []
        if "slack" in self._enabled:
            role = note.channel_role or (
                "stakeholders" if "stakeholder" in note.recipient else "incidents"
            )
            if role == "stakeholders":
                return [("slack", self._settings.stakeholders_channel(note.recipient))]
            if role == "engineering":  # the weekly follow-up: the policy's channel as is
                return [("slack", note.recipient)]
            return [("slack", self._settings.incidents_channel(note.recipient))]
        return []

    def _sender(self, channel: ChannelName) -> Any:
        assert self._ledger is not None
        if channel == "slack":
            return SlackSender(self._settings, self._ledger)
        if channel in ("sms", "voice"):
            return TwilioSender(self._settings, channel)
        if channel == "email":
            return EmailSender(self._settings)
        raise ValueError(channel)

    async def _deliver(
        self, note: Notification, route: list[tuple[ChannelName, str | None]]
    ) -> DeliveryResult:
        assert self._ledger is not None
        attempts: list[DeliveryAttempt] = []
        tries, waited = 1, timedelta(0)
        if activity.in_activity():
            info = activity.info()
            tries, waited = info.attempt, datetime.now(UTC) - info.scheduled_time
        give_up = tries >= TRANSIENT_ATTEMPTS_BEFORE_FALLBACK or waited >= FALL_BACK_AFTER
        usable = [(c, a) for c, a in route if a]
        last: ChannelName = usable[-1][0]
        for channel, address in route:
            if not address:
                attempts.append(
                    DeliveryAttempt(channel=channel, status="skipped", detail="no address")
                )
                continue
            key = channel_key(note.idempotency_key, channel)
            cnote = note.model_copy(update={"idempotency_key": key, "channel": channel})
            sender = self._sender(channel)
            find = getattr(sender, "find", None)
            try:
                outcome = await deliver_once(
                    self._ledger,
                    key=key,
                    incident_id=note.incident_id,
                    channel=channel,
                    address=address,
                    send=functools.partial(sender.send, cnote, address),
                    find=functools.partial(find, cnote, address) if find else None,
                    lease_s=self._lease_s,
                    handover_s=self._handover_s,
                )
            except TransientDeliveryError as err:
                if channel != last and give_up:
                    detail = f"{err.reason} (still failing after {tries} tries)"
                    await asyncio.to_thread(self._ledger.finish, key, "failed", detail=detail)
                    outcome = Outcome("failed", None, detail)
                else:
                    log.warning("%s to %s: %s; retrying", channel, note.recipient, err.reason)
                    delay = timedelta(seconds=err.retry_after) if err.retry_after else None
                    raise ApplicationError(
                        f"{CHANNEL_TITLES[channel]} to {note.recipient}: {err.reason}",
                        type="TransientDeliveryError",
                        next_retry_delay=delay,
                    ) from None
            await asyncio.to_thread(self._record(cnote, key, channel, address, outcome))
            if outcome.status == "failed":
                log.warning("%s to %s failed: %s", channel, note.recipient, outcome.detail)
                attempts.append(
                    DeliveryAttempt(channel=channel, status="failed", detail=outcome.detail)
                )
                continue
            status: Literal["duplicate", "sent"] = (
                "duplicate" if outcome.status == "duplicate" else "sent"
            )
            attempts.append(DeliveryAttempt(channel=channel, status=status, detail=outcome.detail))
            log.info("%s: %s -> %s: %s", channel, note.kind, note.recipient, note.subject)
            return DeliveryResult(
                idempotency_key=key,
                channel=channel,
                delivered=outcome.status != "duplicate",
                delivered_at=datetime.now(UTC),
                attempts=attempts,
            )
        return DeliveryResult(
            idempotency_key=channel_key(note.idempotency_key, last),
            channel=last,
            delivered=False,
            delivered_at=datetime.now(UTC),
            attempts=attempts,
        )

    def _record(
        self, note: Notification, key: str, channel: ChannelName, address: str, outcome: Outcome
    ) -> Any:
        def write() -> None:
            row = self._row(note, key, channel, datetime.now(UTC))
            row["status"] = "failed" if outcome.status == "failed" else "sent"
            detail = outcome.detail if outcome.status == "failed" else (outcome.provider_id or "")
            row["detail"] = f"{address}: {detail}" if detail else address
            self._store.record_notification(row)

        return write

    @staticmethod
    def _row(note: Notification, key: str, channel: str, now: datetime) -> dict[str, Any]:
        return {
            "idempotency_key": key,
            "incident_id": note.incident_id,
            "workflow_id": note.workflow_id,
            "kind": note.kind,
            "recipient": note.recipient,
            "channel": channel,
            "subject": note.subject,
            "text": note.text,
            "scheduled_at": note.scheduled_at.isoformat(),
            "recorded_at": now.isoformat(),
        }
