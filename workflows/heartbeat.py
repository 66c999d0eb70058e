"""HeartbeatWorkflow: one durable timer per heartbeat monitor (workflow id ``heartbeat/<name>``).

The API signals ``ping`` with signal-with-start, so a monitor's first ping creates it. The
workflow sleeps until ``period + grace`` after the latest ping; each ping restarts that
timer. When the timer fires, an activity opens the monitor's incident through the normal
alert path, and the workflow then waits (no timer, no polling) for the next ping, whose
arrival runs the activity that resolves it. After ``CONTINUE_AFTER_PINGS`` pings it
continues as new with its state, so the history stays small however long it runs.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.heartbeats import HeartbeatActivities, HeartbeatMissed, HeartbeatRecovered
    from domain.heartbeats import HeartbeatState, due_by, is_overdue
    from domain.policy import HeartbeatMonitor

CONTINUE_AFTER_PINGS = 500
_TIMEOUT = timedelta(seconds=60)
# No maximum attempts: a miss must open its incident once Temporal and the worker can.
_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


class HeartbeatInput(BaseModel):
    """Start input. ``state`` is set when continuing as new."""

    monitor: HeartbeatMonitor
    state: HeartbeatState | None = None
    continue_after_pings: int = Field(default=CONTINUE_AFTER_PINGS, ge=1)


class HeartbeatPing(BaseModel):
    """A ping, with the monitor as the API's policy defines it now (edits apply from here).
    The token never travels: the API checked it."""

    monitor: HeartbeatMonitor


@workflow.defn
class HeartbeatWorkflow:
    @workflow.init
    def __init__(self, inp: HeartbeatInput) -> None:
        self._state = inp.state or HeartbeatState(name=inp.monitor.name, monitor=inp.monitor)
        self._run_pings = 0

    @workflow.signal
    def ping(self, ping: HeartbeatPing) -> None:
        st = self._state
        if ping.monitor.name == st.name:
            st.monitor = ping.monitor
        st.last_ping_at = workflow.now()
        st.pings += 1
        self._run_pings += 1

    @workflow.query
    def state(self) -> HeartbeatState:
        return self._state

    @workflow.run
    async def run(self, inp: HeartbeatInput) -> HeartbeatState:
        st = self._state
        while not st.removed:
            if st.missed_at is None:
                await self._watch()
            else:
                await self._recover()
            if (
                self._run_pings >= inp.continue_after_pings
                or workflow.info().is_continue_as_new_suggested()
            ):
                workflow.continue_as_new(
                    HeartbeatInput(
                        monitor=st.monitor, state=st, continue_after_pings=inp.continue_after_pings
                    )
                )
        return st

    async def _watch(self) -> None:
        """Until the next ping (the timer starts again) or the deadline (a miss)."""
        st = self._state
        seen = st.pings
        due = due_by(st)
        if due is None:  # not pinged yet: nothing to miss
            await workflow.wait_condition(lambda: st.pings != seen)
            return
        remaining = due - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: st.pings != seen,
                    timeout=remaining,
                    timeout_summary=f"{st.name} due by {due.isoformat()}",
                )
                return
            except TimeoutError:
                pass
        now = workflow.now()
        if st.pings != seen or not is_overdue(st, now):
            return  # a ping came with the deadline
        assert st.last_ping_at is not None
        st.missed_at = now
        st.missed_after_ping = st.pings
        st.misses += 1
        opened = await workflow.execute_activity_method(
            HeartbeatActivities.open_heartbeat_incident,
            HeartbeatMissed(monitor=st.monitor, last_ping_at=st.last_ping_at, missed_at=now),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        if not opened.monitored:  # removed from the policy: stop watching
            st.missed_at = None
            st.removed = True

    async def _recover(self) -> None:
        """The incident is open: the first ping after the miss resolves it."""
        st = self._state
        await workflow.wait_condition(lambda: st.pings != st.missed_after_ping)
        await workflow.execute_activity_method(
            HeartbeatActivities.resolve_heartbeat_incident,
            HeartbeatRecovered(name=st.name),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        st.missed_at = None
