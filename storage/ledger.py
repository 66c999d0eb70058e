"""Idempotency records for real deliveries, next to the outbox in Firewatch's database.

One row per channel key (``incident:step:recipient:channel``):

* ``pending``  written BEFORE the provider is called. Found by a later attempt, it means
  "the outcome is unknown" (the worker died, or the call timed out): that attempt asks
  the provider whether the message exists before sending again.
* ``unknown``  the call ended without a clear answer (5xx, timeout): ask the provider first.
* ``retry``    the provider certainly did not take it (429, refused connection): send again.
* ``sent``     written AFTER the call, with the provider's id. Never sent again.
* ``failed``   permanent failure; the reason is kept for the timeline.

``channel_state`` keeps small facts about incidents on the providers: the #incidents
message's ts, the war-room channel, who has been invited, resolved channel ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.engine import URL

from storage import dialects
from storage.database import Database
from storage.schema import channel_deliveries, channel_state

LedgerStatus = Literal["pending", "unknown", "retry", "sent", "failed"]
RETRIABLE: tuple[LedgerStatus, ...] = ("pending", "unknown", "retry")


@dataclass(frozen=True)
class LedgerRow:
    idempotency_key: str
    incident_id: str
    channel: str
    address: str
    status: LedgerStatus
    provider_id: str | None
    detail: str | None
    tries: int
    created_at: datetime
    updated_at: datetime
    claimed_by: str | None = None  # the activity attempt that wrote ``pending`` last


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


_d = channel_deliveries.c
_ROW = (
    _d.idempotency_key,
    _d.incident_id,
    _d.channel,
    _d.address,
    _d.status,
    _d.provider_id,
    _d.detail,
    _d.tries,
    _d.created_at,
    _d.updated_at,
    _d.claimed_by,
)
_s = channel_state.c


def _row(r: Sequence[Any]) -> LedgerRow:
    return LedgerRow(
        idempotency_key=r[0],
        incident_id=r[1],
        channel=r[2],
        address=r[3],
        status=r[4],
        provider_id=r[5],
        detail=r[6],
        tries=r[7],
        created_at=datetime.fromisoformat(r[8]),
        updated_at=datetime.fromisoformat(r[9]),
        claimed_by=r[10],
    )


class Ledger:
    """``where``: an open ``Database`` (``store.database``), a database URL, or the path of
    an SQLite file (as ``Ledger(store.path)`` passes it)."""

    def __init__(self, where: Database | Path | str | URL) -> None:
        if isinstance(where, Database):
            self.database = where
        elif isinstance(where, Path):
            self.database = Database.open(f"sqlite:///{where.resolve()}")
        else:
            self.database = Database.open(where)

    # ---- deliveries ---------------------------------------------------------------------

    def get(self, key: str) -> LedgerRow | None:
        with self.database.read() as db:
            row = db.execute(select(*_ROW).where(_d.idempotency_key == key)).first()
        return _row(row) if row is not None else None

    def begin(
        self,
        key: str,
        *,
        incident_id: str,
        channel: str,
        address: str,
        claimed_by: str | None = None,
    ) -> LedgerRow | None:
        """Record that a call is about to go out (the 'before' record); returns the row as
        it was before (None: this is the first attempt anywhere).

        One transaction, atomic on both databases: of two attempts racing on ``key`` (two
        workers, two hosts), exactly one gets None; the other gets the ``pending`` row and
        must treat the outcome as unknown (ask the provider, see ``channels.once``). A row
        already ``sent`` or ``failed`` is left as it is.
        """
        now = _now()
        with self.database.write(urgent=True) as db:
            fresh = {
                "idempotency_key": key,
                "incident_id": incident_id,
                "channel": channel,
                "address": address,
                "status": "pending",
                "tries": 1,
                "created_at": now,
                "updated_at": now,
                "claimed_by": claimed_by,
            }
            # PostgreSQL: waits for a concurrent insert of the key to commit, then skips.
            inserted = db.execute(
                dialects.insert_ignoring_conflict(
                    db, channel_deliveries, fresh, ["idempotency_key"]
                )
            ).rowcount
            if inserted == 1:
                return None
            found = db.execute(
                select(*_ROW).where(_d.idempotency_key == key).with_for_update()
            ).one()
            if found[4] in RETRIABLE:
                db.execute(
                    update(channel_deliveries)
                    .where(_d.idempotency_key == key)
                    .values(
                        status="pending", tries=_d.tries + 1, updated_at=now, claimed_by=claimed_by
                    )
                )
        return _row(found)

    def finish(
        self,
        key: str,
        status: LedgerStatus,
        *,
        provider_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The 'after' record: sent (with the provider's id), failed, or retry."""
        values: dict[str, Any] = {"status": status, "detail": detail, "updated_at": _now()}
        if provider_id is not None:
            values["provider_id"] = provider_id
        with self.database.write(urgent=True) as db:
            db.execute(
                update(channel_deliveries)
                .where(_d.idempotency_key == key, _d.status != "sent")
                .values(values)
            )

    def rows(self, incident_id: str) -> list[LedgerRow]:
        with self.database.read() as db:
            found = db.execute(
                select(*_ROW).where(_d.incident_id == incident_id).order_by(_d.created_at)
            ).all()
        return [_row(r) for r in found]

    # ---- small facts ----------------------------------------------------------------------

    def value(self, name: str) -> Any:
        with self.database.read() as db:
            raw = db.scalar(select(_s.value).where(_s.name == name))
        return json.loads(raw) if raw is not None else None

    def set_value(self, name: str, value: Any) -> None:
        now = _now()
        with self.database.write() as db:
            db.execute(
                dialects.upsert(
                    db,
                    channel_state,
                    {"name": name, "value": json.dumps(value), "updated_at": now},
                    ["name"],
                    {"value": lambda new: new.value, "updated_at": lambda new: new.updated_at},
                )
            )
