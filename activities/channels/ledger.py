"""The delivery ledger: the storage layer's ``Ledger`` (see ``storage.ledger``), and its
named values as async code must use them (``LedgerValues``).

``from activities.channels.ledger import Ledger`` goes on working; new code imports
``Ledger`` from ``storage.ledger``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from storage.ledger import Ledger, LedgerRow, LedgerStatus

__all__ = ["Ledger", "LedgerRow", "LedgerStatus", "LedgerValues"]


class LedgerValues:
    """The ledger's named values (Slack ids, message and chart states) for async code.

    Every read and write runs in a thread. On the event loop, a write waiting for SQLite's
    write lock (up to the 30 s busy timeout) stalled the whole worker: the loop also polls
    and completes every workflow task and sends every heartbeat.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def get(self, name: str) -> Any:
        return await asyncio.to_thread(self._ledger.value, name)

    async def set(self, name: str, value: Any) -> None:
        await asyncio.to_thread(self._ledger.set_value, name, value)
