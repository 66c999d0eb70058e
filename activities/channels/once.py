"""Exactly-once around one provider call, driven by the ledger.

    row = ledger[key]
    sent                 → nothing to do ("duplicate")
    failed               → the earlier permanent failure stands
    pending (recent)     → an earlier attempt may still be talking to the provider: wait
    pending / unknown    → ask the provider (find); if it has the message, record it as sent
    otherwise            → record pending, call, record sent / failed / unknown / retry

A worker that dies between the provider's answer and the activity's completion leaves
``pending``; the retry finds the message at the provider and does not send it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

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
) -> Outcome:
    row = await asyncio.to_thread(ledger.get, key)
    if row is not None:
        if row.status == "sent":
            return Outcome("duplicate", row.provider_id, "already delivered")
        if row.status == "failed":
            return Outcome("failed", None, row.detail or "failed")
        if row.status in ("pending", "unknown"):
            if row.status == "pending":
                age = (datetime.now(UTC) - row.updated_at).total_seconds()
                if 0 <= age < lease_s:
                    raise TransientDeliveryError(
                        "an earlier attempt may still be in flight",
                        retry_after=round(lease_s - age, 1) + 0.5,
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
        ledger.begin, key, incident_id=incident_id, channel=channel, address=address
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
