"""Slack Web API: DMs to people, posts to channels, and finding a post again.

Every ``chat.postMessage`` carries our idempotency key in message metadata
(``event_type: firewatch_notification``). When an earlier attempt's outcome is unknown,
:meth:`SlackSender.find` reads the conversation (``conversations.history``, or
``conversations.replies`` for a thread) with ``include_all_metadata`` and looks for it.

A note with a chart (``attachments.NotificationWithChart``: the monthly report) is the
chart's upload, the text as its comment (``files.getUploadURLExternal``, the upload URL,
``files.completeUploadExternal``); such a share carries no metadata, so ``find`` looks for
the file's id, kept in the ledger. The chart gets one try; then the text is posted alone.

Errors map onto the two failure kinds: ``channel_not_found``, ``not_in_channel``,
``invalid_auth``, ``account_inactive``, ``user_not_found`` (and their like) are
permanent; HTTP 429 / ``ratelimited`` is transient with Slack's Retry-After; 5xx and
network errors are transient and "maybe sent".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from activities.channels.attachments import Chart, chart_of, chart_state_key
from activities.channels.base import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from activities.channels.formatting import slack_mrkdwn
from activities.channels.handoff_slack import handoff_buttons
from activities.channels.ledger import Ledger, LedgerValues
from activities.channels.settings import ChannelSettings
from activities.models import Notification

log = logging.getLogger(__name__)
T = TypeVar("T")

METADATA_EVENT = "firewatch_notification"
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "restricted_action",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_arguments",
    }
)
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
# Button action ids (starter.api.slack handles them).
ACTION_ACK = "firewatch_ack"
ACTION_ESCALATE = "firewatch_escalate"
ACTION_RESOLVE = "firewatch_resolve"
ACTION_DIAGNOSE = "firewatch_diagnose"
ACTION_MITIGATE = "firewatch_mitigate"
ACTION_APPROVE = "firewatch_approve"
ACTION_DECLINE = "firewatch_decline"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SECTION_LIMIT = 3000


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def map_slack_error(err: SlackApiError, what: str) -> Exception:
    response = err.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    headers = getattr(response, "headers", None)
    if status == 429 or code == "ratelimited":
        retry_after = _header(headers, "Retry-After")
        seconds = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return TransientDeliveryError(f"Slack rate limited {what}", retry_after=seconds)
    if status >= 500 or code in TRANSIENT_ERRORS:
        return TransientDeliveryError(f"Slack {what}: {code or f'HTTP {status}'}", maybe_sent=True)
    if code in PERMANENT_ERRORS:
        return PermanentDeliveryError(f"Slack {what}: {code}")
    return PermanentDeliveryError(f"Slack {what}: {code or f'HTTP {status}'}")


async def slack_call(call: Awaitable[T], what: str) -> T:
    try:
        return await call
    except SlackApiError as err:
        raise map_slack_error(err, what) from None
    except (aiohttp.ClientConnectorError, ConnectionRefusedError) as err:
        raise TransientDeliveryError(f"Slack unreachable ({what}): {err}") from None
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        raise TransientDeliveryError(
            f"Slack call failed ({what}): {type(err).__name__}", maybe_sent=True
        ) from None


def slack_client(settings: ChannelSettings) -> AsyncWebClient:
    assert settings.slack_bot_token is not None
    base = (
        settings.slack_base_url
        if settings.slack_base_url.endswith("/")
        else settings.slack_base_url + "/"
    )
    # No SDK retries: Temporal retries the activity, and the ledger decides whether to resend.
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base,
        timeout=int(settings.http_timeout),
        retry_handlers=[],
        session=_shared_session(settings.http_timeout),
    )


_SESSIONS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[float, aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def _shared_session(timeout_s: float) -> aiohttp.ClientSession:
    """One HTTP session per event loop and timeout, kept open: Slack calls reuse their
    connections instead of paying a new TCP and TLS handshake each (the SDK's default
    without one). Keyed by timeout too: with a session of its own the SDK ignores its
    ``timeout`` and uses the session's."""
    sessions = _SESSIONS.setdefault(asyncio.get_running_loop(), {})
    session = sessions.get(timeout_s)
    if session is None or session.closed:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        sessions[timeout_s] = session
    return session


async def close_shared_sessions() -> None:
    """Close this event loop's shared sessions (at shutdown: their connections are
    released, and aiohttp does not warn about sessions left open)."""
    for session in _SESSIONS.pop(asyncio.get_running_loop(), {}).values():
        await session.close()


def button_value(workflow_id: str, incident_id: str, **more: str | int) -> str:
    return json.dumps({"w": workflow_id, "i": incident_id, **more}, separators=(",", ":"))


def response_buttons(
    workflow_id: str, incident_id: str, mitigations: list[tuple[str, str]], diagnostics: bool
) -> list[dict[str, Any]]:
    """A "Run diagnostics" button, and a menu of the service's mitigations (proposals)."""
    elements: list[dict[str, Any]] = []
    if diagnostics:
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_DIAGNOSE,
                "text": {"type": "plain_text", "text": "Run diagnostics"},
                "value": button_value(workflow_id, incident_id),
            }
        )
    if mitigations:
        options = [
            {
                "text": {"type": "plain_text", "text": f"{name}: {title}"[:75]},
                "value": button_value(workflow_id, incident_id, a=name),
            }
            for name, title in mitigations[:100]
        ]
        elements.append(
            {
                "type": "static_select",
                "action_id": ACTION_MITIGATE,
                "placeholder": {"type": "plain_text", "text": "Mitigate…"},
                "options": options,
            }
        )
    return elements


def decision_buttons(workflow_id: str, incident_id: str, proposal: int) -> dict[str, Any]:
    value = button_value(workflow_id, incident_id, n=proposal)
    return {
        "type": "actions",
        "block_id": f"firewatch_decision_{proposal}",
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_APPROVE,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": ACTION_DECLINE,
                "text": {"type": "plain_text", "text": "Decline"},
                "value": value,
            },
        ],
    }


def action_buttons(workflow_id: str, incident_id: str, *, escalate: bool = True) -> dict[str, Any]:
    value = button_value(workflow_id, incident_id)
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": ACTION_ACK,
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "style": "primary",
            "value": value,
        }
    ]
    if escalate:
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_ESCALATE,
                "text": {"type": "plain_text", "text": "Escalate"},
                "value": value,
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": ACTION_RESOLVE,
            "text": {"type": "plain_text", "text": "Resolve"},
            "style": "danger",
            "value": value,
        }
    )
    return {"type": "actions", "block_id": "firewatch_actions", "elements": elements}


FENCE = "```"


def sections(body: str, limit: int = SECTION_LIMIT) -> list[str]:
    """``body`` in pieces of at most ``limit`` characters, cut at line ends (a longer line
    is cut where it must). A cut inside a ``` code block closes the block at the end of
    one piece and opens it again at the start of the next, so each piece renders alone."""
    room = limit - 2 * (len(FENCE) + 1)
    parts: list[tuple[str, str]] = []  # (text, what joins it to the one before)
    for line in body.split("\n"):
        joiner = "\n"
        while len(line) > room:
            parts.append((line[:room], joiner))
            line, joiner = line[room:], ""
        parts.append((line, joiner))
    out: list[str] = []
    current, reopened, inside = "", False, False
    for n, (text, joiner) in enumerate(parts):
        if n and len(current) + len(joiner) + len(text) > room:
            out.append(
                (FENCE + "\n" if reopened else "") + current + ("\n" + FENCE if inside else "")
            )
            current, reopened = text, inside
        else:
            current = current + joiner + text if n else text
        if text.count(FENCE) % 2:
            inside = not inside
    out.append((FENCE + "\n" if reopened else "") + current)
    return out


def text_blocks(text: str) -> list[dict[str, Any]]:
    """The rendered template as mrkdwn sections (Slack allows 3000 characters a section)."""
    body = slack_mrkdwn(text.strip())
    chunks = sections(body) if body else [" "]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks]


def metadata(key: str, incident_id: str) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT, "event_payload": {"key": key, "incident_id": incident_id}}


class SlackDirectory:
    """Slack ids for people and channels, cached in the ledger."""

    def __init__(self, client: AsyncWebClient, ledger: Ledger) -> None:
        self._client = client
        self._values = LedgerValues(ledger)

    async def user_id(self, address: str) -> str:
        """``U123`` as is; ``email:a@b`` through users.lookupByEmail."""
        if not address.startswith("email:"):
            return address
        email = address.removeprefix("email:")
        cached = await self._values.get(f"slack:user:{email.lower()}")
        if cached:
            return str(cached)
        response = await slack_call(
            self._client.users_lookupByEmail(email=email), "users.lookupByEmail"
        )
        user_id = str(response["user"]["id"])
        await self._values.set(f"slack:user:{email.lower()}", user_id)
        return user_id

    async def channel_id(self, channel: str) -> str:
        """A channel's id: ids as they are, ``#name`` through conversations.list (cached)."""
        name = channel.lstrip("#")
        if _CHANNEL_ID.match(name):
            return name
        cached = await self._values.get(f"slack:channel:{name}")
        if cached:
            return str(cached)
        found = await self.find_channel(name)
        if found is None:
            raise PermanentDeliveryError(f"Slack channel #{name}: channel_not_found")
        return found

    async def find_channel(self, name: str) -> str | None:
        cursor: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "types": "public_channel,private_channel",
                "exclude_archived": True,
                "limit": 200,
            }
            if cursor:
                kwargs["cursor"] = cursor
            page = await slack_call(self._client.conversations_list(**kwargs), "conversations.list")
            for ch in page.get("channels") or []:
                if ch.get("name") == name:
                    await self._values.set(f"slack:channel:{name}", ch["id"])
                    return str(ch["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None

    async def dm_channel(self, user_id: str) -> str:
        cached = await self._values.get(f"slack:dm:{user_id}")
        if cached:
            return str(cached)
        opened = await slack_call(
            self._client.conversations_open(users=user_id), "conversations.open"
        )
        channel = str(opened["channel"]["id"])
        await self._values.set(f"slack:dm:{user_id}", channel)
        return channel


def _carries(message: dict[str, Any], key: str, file_id: str | None) -> bool:
    meta = message.get("metadata") or {}
    if (
        meta.get("event_type") == METADATA_EVENT
        and (meta.get("event_payload") or {}).get("key") == key
    ):
        return True
    return file_id is not None and any(
        isinstance(f, dict) and f.get("id") == file_id for f in message.get("files") or []
    )


async def find_by_key(
    client: AsyncWebClient,
    channel_id: str,
    key: str,
    since: datetime,
    thread_ts: str | None = None,
    file_id: str | None = None,
) -> str | None:
    """The ts of our message carrying ``key`` in its metadata (or sharing the file
    ``file_id``: a file share carries no metadata), posted after ``since``."""
    oldest = f"{(since - timedelta(minutes=2)).timestamp():.6f}"
    cursor: str | None = None
    for _ in range(10):  # at most 10 pages of 200: far more than a retry window holds
        kwargs: dict[str, Any] = {
            "channel": channel_id,
            "oldest": oldest,
            "limit": 200,
            "include_all_metadata": True,
        }
        if cursor:
            kwargs["cursor"] = cursor
        if thread_ts:
            page = await slack_call(
                client.conversations_replies(ts=thread_ts, **kwargs), "conversations.replies"
            )
        else:
            page = await slack_call(client.conversations_history(**kwargs), "conversations.history")
        for message in page.get("messages") or []:
            if _carries(message, key, file_id):
                return str(message["ts"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None


class SlackSender:
    """DMs (address: a Slack user id, or ``email:...``) and channel posts (``#name`` / id).

    Posts to the incidents channel go into the incident message's thread when there is
    one; the initial alert becomes that message (see slack_incident_message).
    """

    def __init__(self, settings: ChannelSettings, ledger: Ledger) -> None:
        self._settings = settings
        self._ledger = ledger
        self._values = LedgerValues(ledger)

    def _client(self) -> AsyncWebClient:
        return slack_client(self._settings)

    async def _target(
        self, client: AsyncWebClient, note: Notification, address: str
    ) -> tuple[str, str | None, bool]:
        """(channel to post to, thread ts, broadcast) for a note."""
        directory = SlackDirectory(client, self._ledger)
        if note.person is None or address.startswith("#") or _CHANNEL_ID.match(address):
            parent = await self._values.get(f"slack:message:{note.incident_id}")
            incidents = note.channel_role == "incidents"
            if incidents and parent and note.kind != "initial_alert":
                return parent["channel"], parent["ts"], note.kind == "resolution"
            return await directory.channel_id(address), None, False
        user = await directory.user_id(address)
        if not _USER_ID.match(user):
            raise PermanentDeliveryError(f"Slack: {address!r} is not a user id")
        return user, None, False

    def _blocks(self, note: Notification) -> list[dict[str, Any]]:
        blocks = text_blocks(note.text)
        if note.kind in (
            "page",
            "initial_alert",
            "inform",
            "no_progress",
            "ladder_repeat",
            "ladder_exhausted",
        ):
            blocks.append(action_buttons(note.workflow_id, note.incident_id))
        if note.kind == "mitigation" and note.decision_for is not None:
            blocks.append(decision_buttons(note.workflow_id, note.incident_id, note.decision_for))
        handoff = handoff_buttons(note)  # the weekly handoff's Acknowledge test / Confirm
        if handoff is not None:
            blocks.append(handoff)
        return blocks

    async def send(self, note: Notification, address: str) -> str:
        client = self._client()
        channel, thread_ts, broadcast = await self._target(client, note, address)
        chart = chart_of(note)
        if chart is not None and thread_ts is None and _CHANNEL_ID.match(channel):
            shared = await self._share_chart(client, note, channel, chart)
            if shared is not None:
                return shared
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": slack_mrkdwn(note.subject),
            "blocks": self._blocks(note),
            "metadata": metadata(note.idempotency_key, note.incident_id),
            "unfurl_links": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = broadcast
        response = await slack_call(client.chat_postMessage(**kwargs), "chat.postMessage")
        posted_channel, ts = str(response["channel"]), str(response["ts"])
        await self._remember(note, posted_channel, ts, thread_ts)
        return f"{posted_channel}/{ts}"

    async def _share_chart(
        self, client: AsyncWebClient, note: Notification, channel: str, chart: Chart
    ) -> str | None:
        """The chart with the note's text as its comment, through Slack's upload flow:
        ``files.getUploadURLExternal``, the bytes POSTed to the upload URL, then
        ``files.completeUploadExternal`` sharing it into ``channel``. Returns
        ``channel/file id``, or None: the chart could not go, post the text instead.

        The chart gets one try per delivery key (a ledger value): a retried delivery whose
        earlier attempt tried it posts the text alone. Only the share's outcome can be
        unknown (5xx, timeout); that raises, and the retry's :meth:`find` looks for the
        file in the channel before anything is posted again."""
        state = chart_state_key(note.idempotency_key)
        if await self._values.get(state) is not None:
            return None
        await self._values.set(state, {"state": "uploading"})
        try:
            answer = await slack_call(
                client.files_getUploadURLExternal(
                    filename=chart.filename, length=len(chart.png), alt_txt=chart.title
                ),
                "files.getUploadURLExternal",
            )
            file_id, url = str(answer["file_id"]), str(answer["upload_url"])
            await self._upload(url, chart.png)
        except DeliveryError as err:
            await self._chart_failed(state, err.reason)
            return None
        await self._values.set(state, {"state": "sharing", "file_id": file_id})
        try:
            await slack_call(
                client.files_completeUploadExternal(
                    files=[{"id": file_id, "title": chart.title}],
                    channel_id=channel,
                    initial_comment=slack_mrkdwn(note.text.strip()),
                ),
                "files.completeUploadExternal",
            )
        except TransientDeliveryError as err:
            if err.maybe_sent:
                raise
            await self._chart_failed(state, err.reason, file_id)
            return None
        except PermanentDeliveryError as err:
            await self._chart_failed(state, err.reason, file_id)
            return None
        await self._values.set(state, {"state": "shared", "file_id": file_id})
        return f"{channel}/{file_id}"

    async def _chart_failed(self, state: str, reason: str, file_id: str | None = None) -> None:
        log.warning("Slack chart upload failed (%s): posting the text without it", reason)
        await self._values.set(state, {"state": "failed", "file_id": file_id, "detail": reason})

    async def _upload(self, url: str, data: bytes) -> None:
        """Step 2 of the upload: the raw bytes to the URL Slack gave (no token needed)."""
        timeout = aiohttp.ClientTimeout(total=self._settings.http_timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=data) as answer,
            ):
                body = await answer.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise TransientDeliveryError(f"Slack file upload: {type(err).__name__}") from None
        if answer.status != 200:
            raise PermanentDeliveryError(f"Slack file upload: HTTP {answer.status} {body[:80]}")

    async def _remember(
        self, note: Notification, channel: str, ts: str, thread_ts: str | None
    ) -> None:
        if (
            note.kind == "initial_alert"
            and note.channel_role == "incidents"
            and thread_ts is None
            and not await self._values.get(f"slack:message:{note.incident_id}")
        ):
            await self._values.set(
                f"slack:message:{note.incident_id}", {"channel": channel, "ts": ts}
            )

    async def find(self, note: Notification, address: str, since: datetime) -> str | None:
        client = self._client()
        channel, thread_ts, _ = await self._target(client, note, address)
        if _USER_ID.match(channel):
            channel = await SlackDirectory(client, self._ledger).dm_channel(channel)
        file_id = None
        if chart_of(note) is not None:
            file_id = (await self._values.get(chart_state_key(note.idempotency_key)) or {}).get(
                "file_id"
            )
        ts = await find_by_key(client, channel, note.idempotency_key, since, thread_ts, file_id)
        if ts is None:
            return None
        await self._remember(note, channel, ts, thread_ts)
        return f"{channel}/{ts}"
