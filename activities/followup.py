"""The weekly follow-up: gather its facts (storage and Temporal visibility), send the digest.

``gather_followup`` is shared by the ``WeeklyFollowUpWorkflow``'s activity and by
``GET /followup`` (``firewatch followup``), so both print the same digest. It reads the
post-mortem and action-item tables (never workflow histories) and lists open P3 incidents
through visibility.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.models import DeliveryResult, Notification
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from domain.followup import (
    FOLLOWUP_KIND,
    FollowUpFacts,
    OpenItem,
    OpenP3,
    UnfinishedPostmortem,
    render_digest,
)
from domain.incident import OPEN_STATUSES
from starter.incidents import list_incidents
from storage.database import Database
from storage.postmortems import Postmortems
from storage.store import Store


def stored_facts(database: Database, at: datetime) -> FollowUpFacts:
    """The digest's facts from Firewatch's tables (action items and post-mortems as the
    post-mortem workflows wrote them); the open P3s are added by ``gather_followup``."""
    store = Postmortems(database)
    items = store.action_items(open_only=True, now=at, limit=1000)
    pms = store.postmortems(open_only=True, limit=500)
    return FollowUpFacts(
        at=at,
        items=[
            OpenItem(
                incident_id=i.incident_id,
                number=i.number,
                title=i.title,
                owner=i.owner,
                due=i.due,
                overdue=i.overdue,
                status=i.status,
            )
            for i in items
        ],
        postmortems=[
            UnfinishedPostmortem(
                incident_id=p.incident_id,
                summary=p.summary,
                review_at=p.review_at,
                held=p.held_at is not None,
                lessons=p.lessons_filled,
            )
            for p in pms
            if p.held_at is None or not p.lessons_filled
        ],
        p3=[],
    )


async def gather_followup(client: Client, database: Database, at: datetime) -> FollowUpFacts:
    facts = await asyncio.to_thread(stored_facts, database, at)
    incidents = Store(database)  # the summaries, written with each INC id
    rows = [
        row
        for status in OPEN_STATUSES
        for row in await list_incidents(
            client, status=status.value, severity="P3", limit=500, store=incidents
        )
    ]
    facts.p3 = [
        OpenP3(
            incident_id=r["incident_id"],
            summary=r.get("summary"),
            service=r.get("service"),
            status=r.get("status"),
            assignee=r.get("assignee"),
            opened_at=datetime.fromisoformat(r["opened_at"]) if r.get("opened_at") else None,
        )
        for r in rows
    ]
    return facts


class GatherFollowUp(BaseModel):
    at: datetime


class SendFollowUp(BaseModel):
    facts: FollowUpFacts
    workflow_id: str


class FollowUpActivities:
    def __init__(
        self,
        client: Client,
        database: Database,
        policies: PolicyActivities,
        notify: NotifyActivities,
    ) -> None:
        self._client = client
        self._database = database
        self._policies = policies
        self._notify = notify

    @activity.defn(name="Gather weekly follow-up")
    async def gather(self, request: GatherFollowUp) -> FollowUpFacts:
        return await gather_followup(self._client, self._database, request.at)

    @activity.defn(name="Send weekly follow-up")
    async def send(self, request: SendFollowUp) -> list[DeliveryResult]:
        """The digest to #engineering and the team lead, once each per week (by key)."""
        policy = self._policies.load_policy_snapshot()
        digest = render_digest(request.facts, policy)
        week = f"{request.facts.at:%G-W%V}"
        lead = policy.roster.person(policy.roster.team_lead)
        notes = [
            Notification(
                idempotency_key=f"followup:{week}:{recipient}:outbox",
                incident_id=request.workflow_id,
                workflow_id=request.workflow_id,
                kind=FOLLOWUP_KIND,
                recipient=recipient,
                person=person,
                subject=digest.subject,
                text=digest.text,
                scheduled_at=request.facts.at,
                channel_role="engineering" if person is None else None,
            )
            for recipient, person in (
                (policy.channels.engineering, None),
                (policy.roster.team_lead, lead),
            )
        ]
        return list(await asyncio.gather(*(self._notify.deliver_notification(n) for n in notes)))
