"""Exactly-once around one provider call, driven by the ledger.

    row = ledger[key]
    sent                 → nothing to do ("duplicate")
    failed               → the earlier permanent failure stands
    pending (recent)     → an earlier attempt may still be talking to the provider: wait
                           (unless it was this activity's earlier attempt, see below)
    pending / unknown    → ask the provider (find); if it has the message, record it as sent
    otherwise            → record pending, call, record sent / failed / unknown / retry

A worker that dies between the provider's answer and the activity's completion leaves
``pending``; the retry finds the message at the provider and does not send it again.

A pending row names the activity attempt that wrote it (``Claim``). A retry of that same
activity does not wait out the lease: Temporal scheduled it only after giving the earlier
attempt up (its worker stopped heartbeating), so once the claim is ``handover_s`` old (the
heartbeat timeout) it asks the provider. A page whose worker died mid-call is then late
by the heartbeat timeout, not by the lease. The wait covers a worker so busy that it
started the earlier attempt after Temporal had given up on it: that attempt's claim is
new, and it may be calling the provider right now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from temporalio import activity

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError
from activities.channels.ledger import Ledger, LedgerStatus

OutcomeStatus = Literal["sent", "found", "duplicate", "failed"]


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    provider_id: str | None = None
    detail: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "found", "duplicate")


@dataclass(frozen=True)
class Claim:
    """The activity attempt calling the provider: ``<run id>/<activity id>`` and its try."""

    activity: str
    attempt: int

    def __str__(self) -> str:
        return f"{self.activity}#{self.attempt}"

    def follows(self, claimed_by: str | None) -> bool:
        """Whether ``claimed_by`` is an earlier attempt of this same activity."""
        if claimed_by is None or "#" not in claimed_by:
            return False
        earlier, _, attempt = claimed_by.rpartition("#")
        return earlier == self.activity and attempt.isdigit() and int(attempt) < self.attempt


def current_claim() -> Claim | None:
    """The running activity's attempt (None outside an activity)."""
    if not activity.in_activity():
        return None
    info = activity.info()
    return Claim(f"{info.workflow_run_id}/{info.activity_id}", info.attempt)


async def deliver_once(
    ledger: Ledger,
    *,
    key: str,
    incident_id: str,
    channel: str,
    address: str,
    send: Callable[[], Awaitable[str]],
    find: Callable[[datetime], Awaitable[str | None]] | None,
    lease_s: float,
    handover_s: float = 0.0,
) -> Outcome:
    claim = current_claim()
    row = await asyncio.to_thread(ledger.get, key)
    if row is not None:
        if row.status == "sent":
            return Outcome("duplicate", row.provider_id, "already delivered")
        if row.status == "failed":
            return Outcome("failed", None, row.detail or "failed")
        if row.status in ("pending", "unknown"):
            if row.status == "pending":
                age = (datetime.now(UTC) - row.updated_at).total_seconds()
                given_up = claim is not None and claim.follows(row.claimed_by)
                wait = handover_s if given_up else lease_s
                if 0 <= age < wait:
                    raise TransientDeliveryError(
                        "an earlier attempt may still be in flight",
                        retry_after=round(wait - age, 1) + 0.5,
                    )
            if find is not None:
                try:
                    found = await find(row.created_at)
                except PermanentDeliveryError as err:
                    await asyncio.to_thread(ledger.finish, key, "failed", detail=err.reason)
                    return Outcome("failed", None, err.reason)
                if found:
                    note = "found at the provider after an interrupted attempt"
                    await asyncio.to_thread(
                        ledger.finish, key, "sent", provider_id=found, detail=note
                    )
                    return Outcome("found", found, note)
    before = await asyncio.to_thread(
        ledger.begin,
        key,
        incident_id=incident_id,
        channel=channel,
        address=address,
        claimed_by=str(claim) if claim is not None else None,
    )
    if before is not None and before.status == "sent":  # an overlapping attempt finished
        return Outcome("duplicate", before.provider_id, "already delivered")
    if before is not None and before.status == "failed":
        return Outcome("failed", None, before.detail or "failed")
    if before is not None and (row is None or before.updated_at != row.updated_at):
        # Another attempt (another host) claimed the key between our read and our claim.
        raise TransientDeliveryError(
            "another attempt claimed this delivery first", retry_after=lease_s
        )
    try:
        provider_id = await send()
    except PermanentDeliveryError as err:
        await asyncio.to_thread(ledger.finish, key, "failed", detail=err.reason)
        return Outcome("failed", None, err.reason)
    except TransientDeliveryError as err:
        status: LedgerStatus = "unknown" if err.maybe_sent else "retry"
        await asyncio.to_thread(ledger.finish, key, status, detail=err.reason)
        raise
    await asyncio.to_thread(ledger.finish, key, "sent", provider_id=provider_id)
    return Outcome("sent", provider_id)
