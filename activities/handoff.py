"""The weekly handoff's I/O (``workflows.handoff``): gather the report, keep the result.

``gather`` reads everything the report shows at the handoff instant: who hands over to
whom (the rota with the run-time overrides), the open incidents (Temporal visibility, then
each one's state for its last update and next step), every integration's last alert
(``integration_seen``, touched by ingest), every heartbeat monitor's state (its workflow's
``state`` query), the change feed of the last week and the outgoing person's notes.
A part that cannot be read (Temporal visibility slow, a heartbeat workflow not answering)
is left out with a note in the report rather than failing the handoff.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.config import PolicyStore
from activities.people import OncallActivities
from activities.settings import get_settings
from domain import rotation
from domain.handoff import (
    HandoffReport,
    HandoffResult,
    HeartbeatLine,
    IntegrationHealth,
    OpenIncidentLine,
    handoff_id,
    plan_test_pages,
)
from domain.heartbeats import HeartbeatState, heartbeat_workflow_id
from domain.heartbeats import status as heartbeat_status
from domain.incident import OPEN_STATUSES
from domain.policy import Person, Role
from domain.schedule import rotation_for
from starter.secrets import load_added
from storage.handoffs import Handoffs
from storage.store import Store

log = logging.getLogger(__name__)

# A schedule fires at the handoff instant or just after; a run started up to this much
# early (clock skew) still belongs to the coming shift.
EARLY_TOLERANCE = timedelta(minutes=5)
QUERY_TIMEOUT = timedelta(seconds=5)
MAX_INCIDENTS = 200


class NextHandoff(BaseModel):
    role: Role
    after: datetime


class GatherHandoff(BaseModel):
    role: Role
    at: datetime  # the handoff is the one at (or just before) this instant
    workflow_id: str
    now: datetime | None = None  # workflow time, when later than ``at`` (a late run)


class Gathered(BaseModel):
    enabled: bool
    report: HandoffReport | None = None
    team_lead: Person | None = None
    incidents_channel: str = "#incidents"
    existing: HandoffResult | None = None  # this handoff ran already (a catch-up run)


class RecordHandoff(BaseModel):
    result: HandoffResult
    version: int  # writes in order: an older retry never overwrites a newer one


class HandoffActivities:
    def __init__(
        self, client: Client, policy: PolicyStore, store: Store, oncall: OncallActivities
    ) -> None:
        self._client = client
        self._policy = policy
        self._store = store
        self._rows = Handoffs(store.database)
        self._oncall = oncall

    @property
    def rows(self) -> Handoffs:
        return self._rows

    @activity.defn(name="Next handoff")
    def next_handoff(self, request: NextHandoff) -> datetime:
        rot = rotation_for(self._policy.get().roster, request.role)
        if rot is None:
            raise ValueError(f"{request.role.value} has no rotation")
        return rotation.next_handoffs(rot, request.after, 1)[0][0]

    @activity.defn(name="Gather handoff")
    async def gather(self, request: GatherHandoff) -> Gathered:
        policy = self._policy.get()
        if not policy.handoff.enabled:
            return Gathered(enabled=False)
        roster = policy.roster
        rot = rotation_for(roster, request.role)
        if rot is None:
            raise ValueError(f"{request.role.value} has no rotation")
        start, end = rotation.shift_bounds(rot, request.at + EARLY_TOLERANCE)
        hid = handoff_id(request.role, start)
        existing = await asyncio.to_thread(self._rows.get, hid)
        before = start - timedelta(microseconds=1)
        live_in = await asyncio.to_thread(self._oncall.live_roster, roster, start)
        live_out = await asyncio.to_thread(self._oncall.live_roster, roster, before)
        incoming = rotation.holder(live_in, request.role, start)
        outgoing = rotation.holder(live_out, request.role, before)
        team_lead = rotation.holder(live_in, Role.TEAM_LEAD, start)
        out_start = rotation.shift_bounds(rot, before)[0]
        now = max(request.now or request.at, request.at)
        since = now - policy.handoff.changes_since
        incidents, incidents_note = await self._incidents()
        heartbeats, heartbeats_note = await self._heartbeats(now)
        seen = await asyncio.to_thread(self._rows.integrations_seen)
        added = await asyncio.to_thread(
            load_added, get_settings().data_dir, database=self._store.database
        )
        named = {i.name for i in policy.integrations}
        integrations = [
            *policy.integrations,
            *(a.integration for a in added.integrations if a.integration.name not in named),
        ]
        changes = await asyncio.to_thread(self._store.changes, None, since, 200)
        notes = await asyncio.to_thread(self._rows.notes, outgoing.name, out_start, now)
        report = HandoffReport(
            handoff_id=hid,
            role=request.role,
            team=policy.team,
            timezone=rot.timezone,
            at=now,
            shift_start=start,
            shift_end=end,
            outgoing=outgoing,
            incoming=incoming,
            incidents=incidents,
            incidents_note=incidents_note,
            integrations=[
                IntegrationHealth(
                    name=i.name, kind=i.kind, service=i.service, last_seen_at=seen.get(i.name)
                )
                for i in integrations  # the policy's, and those added at run time
            ],
            heartbeats=heartbeats,
            heartbeats_note=heartbeats_note,
            changes=changes,
            changes_since=since,
            notes=notes,
            test_pages=plan_test_pages(hid, {request.role: incoming}),
            test_page_window=policy.handoff.test_page_window,
            silent_after=policy.handoff.silent_after,
        )
        return Gathered(
            enabled=True,
            report=report,
            team_lead=team_lead,
            incidents_channel=policy.channels.incidents,
            existing=existing,
        )

    @activity.defn(name="Record handoff")
    def record(self, request: RecordHandoff) -> bool:
        return self._rows.save(request.result, request.version)

    # ---- the parts -------------------------------------------------------------------------

    async def _incidents(self) -> tuple[list[OpenIncidentLine], str | None]:
        from starter.incidents import get_state, list_incidents

        rows = []
        try:
            for status in OPEN_STATUSES:
                rows += await list_incidents(
                    self._client,
                    status=status.value,
                    limit=MAX_INCIDENTS,
                    sort="-opened",
                    store=self._store,
                )
        except (RPCError, RuntimeError) as err:
            log.warning("handoff: cannot list incidents: %s", err)
            return [], f"Open incidents could not be listed: {err}"
        lines = []
        for row in rows:
            line = OpenIncidentLine(
                incident_id=row["incident_id"],
                severity=row.get("severity"),
                status=row.get("status"),
                service=row.get("service"),
                summary=row.get("summary"),
                assignee=row.get("assignee"),
            )
            try:
                state = await asyncio.wait_for(
                    get_state(self._client, line.incident_id, store=self._store),
                    QUERY_TIMEOUT.total_seconds(),
                )
            except Exception as err:  # the list still shows what visibility knows
                log.warning("handoff: no state for %s: %s", line.incident_id, err)
            else:
                line = line.model_copy(
                    update={
                        "summary": state.summary,
                        "status": state.status.value,
                        "last_update_at": state.last_update_at,
                        "last_update": state.last_update_text,
                        "next_step": _next_step(state.next_step_label, state.next_step_at),
                    }
                )
            lines.append(line)
        return lines, None

    async def _heartbeats(self, at: datetime) -> tuple[list[HeartbeatLine], str | None]:
        monitors = self._policy.get().heartbeats
        lines = []
        problems = []
        for monitor in monitors:
            handle = self._client.get_workflow_handle(heartbeat_workflow_id(monitor.name))
            state: HeartbeatState | None = None
            try:
                state = await handle.query(
                    "state", result_type=HeartbeatState, rpc_timeout=QUERY_TIMEOUT
                )
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    problems.append(f"{monitor.name}: {err.message}")
                    continue
            except Exception as err:
                problems.append(f"{monitor.name}: {err}")
                continue
            lines.append(
                HeartbeatLine(
                    name=monitor.name,
                    status=heartbeat_status(state, at),
                    last_ping_at=state.last_ping_at if state else None,
                )
            )
        note = f"state not available for {'; '.join(problems)}" if problems else None
        return lines, note


def _next_step(label: str | None, at: datetime | None) -> str | None:
    if label is None:
        return None
    return f"{label} at {at:%Y-%m-%d %H:%M} UTC" if at is not None else label
