"""Incident numbers and the outbox: the storage layer's ``Store`` (see ``storage``).

Kept so that ``from activities.store import Store`` goes on working; new code imports
from ``storage.store``.
"""

from __future__ import annotations

from storage.store import IncidentEntry, OutboxRow, Store

__all__ = ["IncidentEntry", "OutboxRow", "Store"]
