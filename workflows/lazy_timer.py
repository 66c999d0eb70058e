"""A wake-up timer that is moved only when the deadline comes earlier.

The incident loop sleeps until its next step or until someone acts. Acks, updates and the
resolution usually push the next step later; cancelling and restarting a timer for each
of them would fill the history. A later deadline keeps the pending timer (its firing only
re-plans); only an earlier one replaces it. Compare samples-python's ``updatable_timer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


class LazyTimer:
    def __init__(self) -> None:
        self._timer: asyncio.Future[None] | None = None
        self._at = datetime.min

    async def wait(self, at: datetime | None, summary: str, woken: Callable[[], bool]) -> None:
        """Return when ``at`` has come (None: never) or ``woken()`` turns true."""
        timer = self._timer if self._timer is not None and not self._timer.done() else None
        if at is not None and (timer is None or at < self._at):
            if timer is not None:
                timer.cancel()
            self._at = at
            delay = max(at - workflow.now(), timedelta(0))
            self._timer = timer = asyncio.ensure_future(workflow.sleep(delay, summary=summary))
        await workflow.wait_condition(lambda: woken() or (timer is not None and timer.done()))

    def now(self) -> datetime:
        """``workflow.now()``, but never before the deadline of a timer that has fired.

        A workflow task that first went to a worker that has died is run by another
        worker, whose clock for that task can be the one of the task before the timer
        fired (seen after a SIGKILL: ``now`` up to a ladder window early, so a due page
        was planned a window later). A fired timer is in the history, so this stays
        deterministic.
        """
        now = workflow.now()
        if self._timer is not None and self._timer.done() and self._at > now:
            return self._at
        return now
