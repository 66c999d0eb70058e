"""What every channel has in common: a sender, and two ways to fail.

* :class:`PermanentDeliveryError`: retrying cannot help (bad number, channel not found,
  auth failure). The next contact method is used.
* :class:`TransientDeliveryError`: try again later (rate limit, 5xx, network). The
  activity fails retryably; Temporal retries it after ``retry_after`` when the provider
  said how long to wait (Slack's and Twilio's Retry-After).

``accepted`` on a transient error says whether the provider may have acted on the call
(a 5xx or a timeout after the request went out): then the next attempt first asks the
provider whether the message exists before sending again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol, runtime_checkable

from activities.models import Notification


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentDeliveryError(DeliveryError):
    pass


class TransientDeliveryError(DeliveryError):
    def __init__(
        self, reason: str, retry_after: float | None = None, *, maybe_sent: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


@runtime_checkable
class Sender(Protocol):
    """One channel. ``note.idempotency_key`` is already the channel's own key."""

    async def send(self, note: Notification, address: str) -> str:
        """Deliver; return the provider's message id."""
        ...


@runtime_checkable
class Reconciler(Protocol):
    async def find(self, note: Notification, address: str, since: datetime) -> str | None:
        """The provider's id of a message this key already produced, or None."""
        ...


def ref_marker(idempotency_key: str) -> str:
    """A short, stable marker of a key, carried in messages whose provider has no metadata."""
    return "ref " + hashlib.sha256(idempotency_key.encode()).hexdigest()[:10]
