"""The one Slack message per incident in #incidents, its war room, and the activity that syncs them.

The message is Block Kit built from the seed's templates: while open, the Initial Alert
(🚨 Incident Alert - P1: service, impact, status, updates) with the assignee, the next
escalation, the latest Update and the Acknowledge / Escalate / Resolve buttons; once
resolved, the Resolution template (duration, root cause, fix). Links: the Temporal UI
and the service's runbook.

``sync_incident_message`` is called by the workflow whenever what the message shows has
changed: it posts the message once (exactly once, through the ledger; the initial alert
note may already have posted it), then ``chat.update``s it in place. Updates land in the
message's thread (the notify activity posts them with ``thread_ts``).

For P0/P1 (``war_room`` in the policy) it creates ``#inc-yyyy-mm-dd-###`` once
(``conversations.create``; ``name_taken`` means an earlier attempt made it) and invites
the responders' Slack users (``conversations.invite``), each once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError
from activities.channels.formatting import slack_mrkdwn
from activities.channels.ledger import Ledger, LedgerValues
from activities.channels.once import deliver_once
from activities.channels.settings import ChannelSettings, settings_from_env
from activities.channels.slack import (
    SlackDirectory,
    action_buttons,
    find_by_key,
    metadata,
    response_buttons,
    slack_call,
    slack_client,
)
from activities.heartbeating import heartbeating
from activities.models import IncidentSnapshot
from activities.store import Store

log = logging.getLogger(__name__)


class SlackSyncResult(BaseModel):
    channel: str | None = None
    ts: str | None = None
    war_room: str | None = None
    invited: list[str] = []
    error: str | None = None


def ui_link(settings: ChannelSettings, namespace: str, workflow_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"


def _hhmm(at: Any) -> str:
    return f"{at:%H:%M} UTC" if at else ""


def message_text(s: IncidentSnapshot) -> str:
    """The notification / fallback text of the message."""
    head = "✅ Resolved" if not s.open else f"🚨 {s.severity}"
    who = ""
    if s.resolved_by:
        who = f" — Resolved by {s.resolved_by}"
    elif s.acknowledged_by:
        who = f" — Acknowledged by {s.acknowledged_by}"
    return f"{head} {s.incident_id} {s.service}: {s.summary} — Status: {s.status}{who}"


def incident_blocks(
    s: IncidentSnapshot, *, ui_url: str | None, war_room_id: str | None
) -> list[dict[str, Any]]:
    m = slack_mrkdwn
    blocks: list[dict[str, Any]] = []
    if s.open:
        blocks.append(_header(f"🚨 Incident Alert - {s.severity} 🚨"))
    else:
        blocks.append(_header(f"✅ Incident Resolved - {_hhmm(s.resolved_at)} ✅"))
    blocks.append(_section(f"*{s.incident_id}* · {m(s.summary)}"))
    fields = [
        f"*Severity*\n{s.severity} - {m(s.severity_title)}",
        f"*Service*\n{m(s.service)}",
        f"*Status*\n{s.status}",
        f"*Assignee*\n{m(s.assignee) if s.assignee else 'unassigned'}",
    ]
    if s.open:
        fields += [
            f"*Next escalation*\n{m(s.next_escalation) if s.next_escalation else 'none'}",
            f"*Updates*\n{s.updates}",
        ]
    else:
        root_cause = s.root_cause or "Under investigation"
        if s.false_positive:
            root_cause = f"False positive: {root_cause}"
        fields += [
            f"*Duration*\n{s.duration or ''}",
            f"*Root Cause*\n{m(root_cause)}",
            f"*Fix Applied*\n{m(s.fix or 'Not recorded')}",
        ]
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    context = []
    if s.resolved_by:
        context.append(f"Resolved by {m(s.resolved_by)} at {_hhmm(s.resolved_at)}")
    if s.acknowledged_by:
        context.append(f"Acknowledged by {m(s.acknowledged_by)} at {_hhmm(s.acknowledged_at)}")
    elif s.open:
        context.append("Not acknowledged yet")
    context.append(f"Opened {_hhmm(s.opened_at)}")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    if s.last_update_text and s.open:
        blocks.append(
            _section(
                f"📊 *Incident Update - {_hhmm(s.last_update_at)}* 📊\n"
                f"*Status*: {s.status}\n*Progress*: {m(s.last_update_text)}"
            )
        )
    links = []
    if ui_url:
        links.append(f"<{ui_url}|Temporal UI>")
    if s.runbook_title:
        links.append(
            f"<{s.runbook_url}|Runbook: {m(s.runbook_title)}>"
            if s.runbook_url
            else f"Runbook: {m(s.runbook_title)}"
        )
    if war_room_id:
        links.append(f"War room: <#{war_room_id}>")
    if links:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]}
        )
    if s.open:
        actions = action_buttons(s.workflow_id, s.incident_id)
        if not s.triggered:  # acknowledged: no Acknowledge button any more
            actions["elements"] = [
                e for e in actions["elements"] if e["action_id"] != "firewatch_ack"
            ]
        actions["elements"] += response_buttons(
            s.workflow_id, s.incident_id, s.mitigations, s.diagnostics
        )
        blocks.append(actions)
    return blocks


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


class SlackActivities:
    def __init__(self, store: Store, settings: ChannelSettings | None = None) -> None:
        self._settings = settings if settings is not None else settings_from_env()
        self._ledger = Ledger(store.database) if self._settings.slack_enabled else None
        self._lease_s = self._settings.http_timeout + 5.0

    @activity.defn(name="Sync Slack message")
    async def sync_incident_message(self, snapshot: IncidentSnapshot) -> SlackSyncResult | None:
        """Post or edit the incident's message; start the war room. No-op without Slack."""
        if self._ledger is None:
            return None
        try:
            return await heartbeating(self._sync(snapshot))
        except TransientDeliveryError as err:
            delay = timedelta(seconds=err.retry_after) if err.retry_after else None
            raise ApplicationError(
                f"Slack: {err.reason}", type="TransientDeliveryError", next_retry_delay=delay
            ) from None
        except PermanentDeliveryError as err:
            log.warning("Slack incident message for %s: %s", snapshot.incident_id, err.reason)
            return SlackSyncResult(error=err.reason)

    async def _sync(self, s: IncidentSnapshot) -> SlackSyncResult:
        assert self._ledger is not None
        ledger = self._ledger
        values = LedgerValues(ledger)
        client = slack_client(self._settings)
        result = SlackSyncResult()
        if s.war_room and s.war_room_name:
            result.war_room, result.invited = await self._war_room(client, s)
        namespace = (
            activity.info().workflow_namespace if activity.in_activity() else None
        ) or "default"
        blocks = incident_blocks(
            s, ui_url=ui_link(self._settings, namespace, s.workflow_id), war_room_id=result.war_room
        )
        text = message_text(s)
        parent = await values.get(f"slack:message:{s.incident_id}")
        if parent is None:
            channel = self._settings.incidents_channel(s.incidents_channel)
            directory = SlackDirectory(client, ledger)
            channel_id = await directory.channel_id(channel)
            key = f"{s.incident_id}:incident-message:{channel}:slack"

            async def post() -> str:
                response = await slack_call(
                    client.chat_postMessage(
                        channel=channel_id,
                        text=text,
                        blocks=blocks,
                        metadata=metadata(key, s.incident_id),
                        unfurl_links=False,
                    ),
                    "chat.postMessage",
                )
                return f"{response['channel']}/{response['ts']}"

            async def find(since: Any) -> str | None:
                ts = await find_by_key(client, channel_id, key, since)
                return f"{channel_id}/{ts}" if ts else None

            outcome = await deliver_once(
                ledger,
                key=key,
                incident_id=s.incident_id,
                channel="slack",
                address=channel,
                send=post,
                find=find,
                lease_s=self._lease_s,
            )
            if not outcome.delivered or not outcome.provider_id:
                raise PermanentDeliveryError(
                    outcome.detail or "could not post the incident message"
                )
            posted_channel, ts = outcome.provider_id.split("/", 1)
            parent = {"channel": posted_channel, "ts": ts}
            await values.set(f"slack:message:{s.incident_id}", parent)
            if outcome.status != "sent":  # found after an interrupted attempt: bring it up to date
                await self._update(client, parent, text, blocks)
        else:
            await self._update(client, parent, text, blocks)
        result.channel, result.ts = parent["channel"], parent["ts"]
        return result

    async def _update(
        self, client: Any, parent: dict[str, str], text: str, blocks: list[dict[str, Any]]
    ) -> None:
        await slack_call(
            client.chat_update(
                channel=parent["channel"], ts=parent["ts"], text=text, blocks=blocks
            ),
            "chat.update",
        )

    async def _war_room(self, client: Any, s: IncidentSnapshot) -> tuple[str, list[str]]:
        assert self._ledger is not None and s.war_room_name
        values = LedgerValues(self._ledger)
        directory = SlackDirectory(client, self._ledger)
        state_key = f"slack:war_room:{s.incident_id}"
        room = await values.get(state_key)
        if room is None:
            try:
                created = await slack_call(
                    client.conversations_create(name=s.war_room_name), "conversations.create"
                )
                room_id = str(created["channel"]["id"])
            except PermanentDeliveryError as err:
                if "name_taken" not in err.reason:
                    raise
                # An earlier attempt created it and died before recording it.
                found = await directory.find_channel(s.war_room_name)
                if found is None:
                    raise
                room_id = found
            room = {"id": room_id, "name": s.war_room_name, "members": []}
            await values.set(state_key, room)
            log.info("war room #%s (%s) for %s", s.war_room_name, room_id, s.incident_id)
        members: list[str] = list(room.get("members") or [])
        wanted: list[str] = []
        for person in s.invitees:
            address = person.slack_user_id or (f"email:{person.email}" if person.email else None)
            if address is None:
                continue
            try:
                user = await directory.user_id(address)
            except PermanentDeliveryError as err:
                log.warning("war room: no Slack user for %s: %s", person.name, err.reason)
                continue
            if user not in members and user not in wanted:
                wanted.append(user)
        invited: list[str] = []
        if wanted:
            try:
                await slack_call(
                    client.conversations_invite(channel=room["id"], users=",".join(wanted)),
                    "conversations.invite",
                )
                invited = wanted
            except PermanentDeliveryError as err:
                if "already_in_channel" in err.reason:
                    invited = wanted
                else:  # one bad user fails the batch: invite one by one, skipping the bad
                    for user in wanted:
                        try:
                            await slack_call(
                                client.conversations_invite(channel=room["id"], users=user),
                                "conversations.invite",
                            )
                        except PermanentDeliveryError as one:
                            if "already_in_channel" not in one.reason:
                                # Not retried on every sync: the next sync would fail the same way.
                                log.warning("war room: cannot invite %s: %s", user, one.reason)
                                members.append(user)
                                continue
                        invited.append(user)
            room["members"] = [*members, *invited]
            await values.set(state_key, room)
        return str(room["id"]), invited
