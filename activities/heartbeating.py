"""Heartbeats while a call runs, so that a dead worker's attempt is retried fast.

An activity without a heartbeat timeout whose worker is killed is retried only when its
start-to-close timeout runs out (30 s for the Slack incident message). One that
heartbeats is retried on another worker after its heartbeat timeout: ``HEARTBEAT_TIMEOUT``
for deliveries and the Slack message. Heartbeats also deliver cancellations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")

HEARTBEAT_TIMEOUT = timedelta(seconds=1.5)
HEARTBEAT_EVERY_S = 0.5


async def heartbeating(
    call: Awaitable[T], every_s: float = HEARTBEAT_EVERY_S, cancel_grace_s: float = 0.0
) -> T:
    """``await call``, heartbeating every ``every_s`` when inside an activity. Cancelled, it
    cancels ``call`` and waits up to ``cancel_grace_s`` for it to clean up (kill a command)."""
    if not activity.in_activity():
        return await call
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every_s)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            if cancel_grace_s > 0:
                with contextlib.suppress(BaseException):
                    await asyncio.wait({task}, timeout=cancel_grace_s)
