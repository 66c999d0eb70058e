"""Who holds a role at an instant, and calendar questions (time zones live here)."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from activities.models import NextBusinessDay, ResolveOncall, ReviewSlot
from domain import business_days, rotation
from domain.policy import Person


@activity.defn(name="Who is on call")
def resolve_oncall(request: ResolveOncall) -> Person:
    return rotation.holder(request.roster, request.role, request.at)


@activity.defn(name="Next business day")
def next_business_day(request: NextBusinessDay) -> datetime:
    return business_days.next_business_day_start(request.at, request.hours)


@activity.defn(name="Post-mortem review slot")
def postmortem_review_slot(request: ReviewSlot) -> datetime:
    return business_days.postmortem_review_slot(
        request.resolved_at, request.hours, request.review_time, request.within
    )
