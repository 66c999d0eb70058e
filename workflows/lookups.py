"""People and calendar questions the incident asks, answered by quick local activities.

Who holds a role at an instant depends on rotations and time zones, and business days on
the team's calendar: I/O and zone rules stay out of workflow code. People are looked up
when a page is due, not when the incident opened, so run-time overrides count. Answers
this run already has are reused (the opening returns who is on call at that instant).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import NextBusinessDay, ResolveOncall, ReviewSlot
    from activities.people import OncallActivities, next_business_day, postmortem_review_slot
    from domain.ids import postmortem_workflow_id
    from domain.incident import IncidentState
    from domain.policy import ROLE_TITLES, Person, Policy, Role
    from workflows.effects import QUICK, QUICK_RETRY


class Lookups:
    def __init__(self) -> None:
        self.holders: dict[tuple[Role, datetime], Person] = {}

    async def holder(self, policy: Policy, role: Role, at: datetime) -> Person:
        known = self.holders.get((role, at))
        if known is None:
            known = await workflow.execute_local_activity_method(
                OncallActivities.resolve_oncall,
                ResolveOncall(roster=policy.roster, role=role, at=at),
                summary=f"Who is {ROLE_TITLES[role]}?",
                start_to_close_timeout=QUICK,
                retry_policy=QUICK_RETRY,
            )
            self.holders[(role, at)] = known
        return known

    @staticmethod
    async def next_business_day(policy: Policy, at: datetime) -> datetime:
        return await workflow.execute_local_activity(
            next_business_day,
            NextBusinessDay(at=at, hours=policy.business_hours),
            summary="Next business day for the review",
            start_to_close_timeout=QUICK,
            retry_policy=QUICK_RETRY,
        )

    @classmethod
    async def postmortem_slot(cls, st: IncidentState, policy: Policy) -> datetime | None:
        """When a resolved incident's review is (None: its severity needs no post-mortem);
        names the post-mortem's workflow in the state."""
        if not policy.for_severity(st.severity).postmortem_required:
            return None
        st.postmortem_workflow_id = postmortem_workflow_id(st.incident_id or "INC-pending")
        return await cls.review_slot(policy, st.resolved_at or workflow.now())

    @staticmethod
    async def review_slot(policy: Policy, resolved_at: datetime) -> datetime:
        return await workflow.execute_local_activity(
            postmortem_review_slot,
            ReviewSlot(
                resolved_at=resolved_at,
                hours=policy.business_hours,
                review_time=policy.postmortem.review_time,
                within=policy.postmortem.review_within,
            ),
            summary="Schedule post-mortem review",
            start_to_close_timeout=QUICK,
            retry_policy=QUICK_RETRY,
        )
