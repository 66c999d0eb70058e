"""Create-or-update for the Temporal Schedules Firewatch keeps from its policy.

A restart updates a schedule in place (same id), so there is never a second one, and a
schedule paused by hand on the Temporal UI stays paused.
"""

from __future__ import annotations

import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)


async def ensure_schedule(client: Client, schedule_id: str, wanted: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("schedule %s created", schedule_id)
    except ScheduleAlreadyRunningError:

        def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
            wanted.state = current.description.schedule.state  # keep a pause made by hand
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(schedule_id).update(updated)
        log.info("schedule %s updated", schedule_id)


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Remove a schedule the policy switched off (nothing to do if there is none)."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
        log.info("schedule %s deleted (switched off in the policy)", schedule_id)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
