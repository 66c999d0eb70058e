"""The delivery ledger: the storage layer's ``Ledger`` (see ``storage.ledger``).

Kept so that ``from activities.channels.ledger import Ledger`` goes on working; new code
imports from ``storage.ledger``.
"""

from __future__ import annotations

from storage.ledger import Ledger, LedgerRow, LedgerStatus

__all__ = ["Ledger", "LedgerRow", "LedgerStatus"]
