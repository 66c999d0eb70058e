"""Who holds a role at an instant, and calendar questions (time zones live here).

Who is on call is looked up at the moment it is needed, from the policy snapshot's rota
and overrides plus the overrides made at run time (``firewatch override``, ``swap``): an
override added while a ladder runs changes who receives its next page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity

from activities.models import NextBusinessDay, ResolveOncall, ReviewSlot
from domain import business_days, rotation
from domain.policy import Person, Role, Roster
from storage.schedules import Schedules

log = logging.getLogger(__name__)


class OncallActivities:
    def __init__(self, schedules: Schedules) -> None:
        self._schedules = schedules

    def live_roster(self, roster: Roster, at: datetime) -> Roster:
        """``roster`` with the run-time overrides in force at ``at`` laid over it.

        A page never waits on the overrides: if the database cannot be read, the page goes
        to the snapshot's rota (and the log says so) rather than being retried.
        """
        try:
            stored = self._schedules.covering(at)
        except SQLAlchemyError:
            log.exception("run-time overrides unreadable: paging per the policy's rota")
            return roster
        return rotation.with_overrides(roster, [o.as_override() for o in stored])

    def on_call(self, roster: Roster, at: datetime) -> dict[Role, Person]:
        return rotation.on_call(self.live_roster(roster, at), at)

    @activity.defn(name="Who is on call")
    def resolve_oncall(self, request: ResolveOncall) -> Person:
        return rotation.holder(
            self.live_roster(request.roster, request.at), request.role, request.at
        )


@activity.defn(name="Next business day")
def next_business_day(request: NextBusinessDay) -> datetime:
    return business_days.next_business_day_start(request.at, request.hours)


@activity.defn(name="Post-mortem review slot")
def postmortem_review_slot(request: ReviewSlot) -> datetime:
    return business_days.postmortem_review_slot(
        request.resolved_at, request.hours, request.review_time, request.within
    )
