"""A local Slack Web API: the methods Firewatch uses, with Slack's request and answer shapes.

``slack_sdk`` talks to it as to slack.com (``base_url=fake.api_url``): Bearer token,
JSON bodies for chat.*/views.*, form or query parameters for conversations.*/users.*.
Answers are HTTP 200 ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; a rate
limit is HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``.

Methods: chat.postMessage, chat.update, conversations.create, conversations.invite,
conversations.open, conversations.history, conversations.replies, conversations.list,
users.lookupByEmail, views.open; plus ``/response/<id>`` standing in for the
hooks.slack.com response_url of interactions.

File uploads as Slack does them today: ``files.getUploadURLExternal`` (filename, length)
answers a ``file_id`` and an ``upload_url`` on this server (``/upload/v1/<token>``, standing
in for files.slack.com: no token needed, the raw bytes POSTed, answered ``OK - <bytes>`` in
text/plain); ``files.completeUploadExternal`` (``files`` as JSON ``[{"id", "title"}]``,
``channel_id``, ``initial_comment``, ``thread_ts``) shares the uploaded files into the
channel as one message whose ``files`` list them (conversations.history shows them).
A file whose bytes never arrived, or that was already completed, is ``file_not_found``.

Faults: ``fake.ratelimit(method, seconds)``, ``fake.error(method, "channel_not_found")``,
``fake.server_error(method, after_effect=...)``; holds from :class:`FakeHttpServer`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.channels.fake_http import FakeHttpServer, Fault, Reply, Request

BOT_USER = "UFIREWATCHBOT"
TOKEN = "xoxb-test-token"
_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


@dataclass
class Message:
    ts: str
    channel: str
    text: str
    blocks: list[Any] | None
    metadata: dict[str, Any] | None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    files: list[dict[str, Any]] | None = None
    edits: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self, with_metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": "BFIREWATCH",
            "text": self.text,
            "ts": self.ts,
        }
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.files:
            out["files"] = self.files
            out["upload"] = True
        if self.edits:
            out["edited"] = {"user": BOT_USER, "ts": self.ts}
        if with_metadata and self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass
class UploadedFile:
    id: str
    name: str
    length: int
    token: str
    alt_txt: str | None = None
    title: str | None = None
    data: bytes | None = None  # the bytes POSTed to the upload URL
    shared_to: str | None = None  # the channel completeUploadExternal shared it into
    completed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": "image/png" if self.name.endswith(".png") else "application/octet-stream",
            "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "binary",
            "size": len(self.data or b""),
            "user": BOT_USER,
        }


@dataclass
class Channel:
    id: str
    name: str
    is_im: bool = False
    user: str | None = None  # the other side of a DM
    members: set[str] = field(default_factory=set)
    messages: list[Message] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))

    def as_json(self) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.user, "created": self.created}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": BOT_USER in self.members,
            "created": self.created,
            "creator": BOT_USER,
            "num_members": len(self.members),
        }


class FakeSlack(FakeHttpServer):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.views: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_url
        self.valid_triggers: set[str] = set()
        self.files: dict[str, UploadedFile] = {}
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self.add_channel("incidents")
        self.add_channel("stakeholders")

    # ---- directory -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def add_user(self, user_id: str, email: str | None = None, name: str | None = None) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": name or user_id.lower(),
            "deleted": False,
            "is_bot": False,
            "profile": {"email": email, "real_name": name or user_id},
        }

    def add_channel(self, name: str) -> Channel:
        channel = Channel(id=f"C{next(self._ids):08d}", name=name, members={BOT_USER})
        self.channels[channel.id] = channel
        return channel

    def channel(self, name_or_id: str) -> Channel | None:
        key = name_or_id.lstrip("#")
        if key in self.channels:
            return self.channels[key]
        return next((c for c in self.channels.values() if c.name == key and not c.is_im), None)

    def dm(self, user_id: str) -> Channel:
        for ch in self.channels.values():
            if ch.is_im and ch.user == user_id:
                return ch
        channel = Channel(id=f"D{next(self._ids):08d}", name=user_id, is_im=True, user=user_id)
        channel.members = {BOT_USER, user_id}
        self.channels[channel.id] = channel
        return channel

    # ---- what tests read -------------------------------------------------------------

    def messages(self, channel: str) -> list[Message]:
        ch = self.dm(channel) if channel.startswith(("U", "W")) else self.channel(channel)
        return list(ch.messages) if ch else []

    def all_messages(self) -> list[Message]:
        with self.lock:
            return [m for ch in self.channels.values() for m in ch.messages]

    def posts(self) -> list[dict[str, Any]]:
        """Successful chat.postMessage request bodies, in order."""
        return [
            c.request.params
            for c in self.calls_to("chat.postMessage", ok_only=True)
            if _ok(c.response)
        ]

    def posts_with_key(self, key: str) -> list[dict[str, Any]]:
        return [p for p in self.posts() if _key_of(p) == key]

    def shared_files(self) -> list[UploadedFile]:
        """Files completed into a channel, in order."""
        with self.lock:
            return [f for f in self.files.values() if f.completed]

    # ---- faults ------------------------------------------------------------------------

    def ratelimit(self, method: str, retry_after: int = 1, **kw: Any) -> Fault:
        body = {"ok": False, "error": "ratelimited"}
        return self.inject(method, Reply(429, body, {"Retry-After": str(retry_after)}), **kw)

    def error(self, method: str, error: str, **kw: Any) -> Fault:
        return self.inject(method, Reply(200, {"ok": False, "error": error}), **kw)

    def server_error(self, method: str, status: int = 500, **kw: Any) -> Fault:
        return self.inject(
            method,
            Reply(status, "<html>Internal Server Error</html>", content_type="text/html"),
            **kw,
        )

    # ---- protocol ----------------------------------------------------------------------

    def operation(self, request: Request) -> str:
        if request.path.startswith("/response/"):
            return "response_url"
        if request.path.startswith("/upload/v1/"):
            return "upload_url"
        return request.path.removeprefix("/api/")

    def _ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def route(self, name: str, request: Request) -> Reply:
        if name == "response_url":
            with self.lock:
                self.responses.append({"url": request.path, **request.params})
            return Reply(200, "ok", content_type="text/plain")
        if name == "upload_url":
            return self._upload(request)
        auth = request.header("Authorization") or ""
        if not auth.startswith("Bearer "):
            return _fail("not_authed")
        if auth.removeprefix("Bearer ") != self.token:
            return _fail("invalid_auth")
        handler = getattr(self, "m_" + name.replace(".", "_"), None)
        if handler is None:
            return _fail("unknown_method")
        with self.lock:
            return handler(request.params)

    def _target(self, channel: str) -> Channel | None:
        if channel.startswith(("U", "W")):
            if channel not in self.users:
                return None
            return self.dm(channel)
        return self.channel(channel)

    def m_chat_postMessage(self, p: dict[str, Any]) -> Reply:
        channel = self._target(str(p.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        if not channel.is_im and BOT_USER not in channel.members:
            return _fail("not_in_channel")
        text, blocks = p.get("text"), _json(p.get("blocks"))
        if not text and not blocks:
            return _fail("no_text")
        meta = _json(p.get("metadata"))
        thread_ts = p.get("thread_ts") or None
        if thread_ts and not any(m.ts == thread_ts for m in channel.messages):
            return _fail("thread_not_found")
        msg = Message(
            ts=self._ts(),
            channel=channel.id,
            text=str(text or ""),
            blocks=blocks,
            metadata=meta,
            thread_ts=thread_ts,
            reply_broadcast=str(p.get("reply_broadcast", "")).lower() in ("true", "1"),
        )
        channel.messages.append(msg)
        return _ok_reply({"channel": channel.id, "ts": msg.ts, "message": msg.as_json(True)})

    def m_chat_update(self, p: dict[str, Any]) -> Reply:
        channel = self.channel(str(p.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        msg = next((m for m in channel.messages if m.ts == p.get("ts")), None)
        if msg is None:
            return _fail("message_not_found")
        msg.history.append({"text": msg.text, "blocks": msg.blocks})
        if "text" in p:
            msg.text = str(p["text"])
        if "blocks" in p:
            msg.blocks = _json(p["blocks"])
        msg.edits += 1
        return _ok_reply(
            {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": msg.as_json(False)}
        )

    def m_conversations_create(self, p: dict[str, Any]) -> Reply:
        name = str(p.get("name", ""))
        if not _NAME.match(name):
            return _fail("invalid_name_specials")
        if self.channel(name) is not None:
            return _fail("name_taken")
        channel = self.add_channel(name)
        return _ok_reply({"channel": channel.as_json()})

    def m_conversations_invite(self, p: dict[str, Any]) -> Reply:
        channel = self.channel(str(p.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        users = [u for u in str(p.get("users", "")).split(",") if u]
        if not users:
            return _fail("no_user")
        for user in users:
            if user not in self.users:
                return _fail("user_not_found")
        if all(u in channel.members for u in users):
            return _fail("already_in_channel")
        channel.members.update(users)
        return _ok_reply({"channel": channel.as_json()})

    def m_conversations_open(self, p: dict[str, Any]) -> Reply:
        user = str(p.get("users", "")).split(",")[0]
        if user not in self.users:
            return _fail("user_not_found")
        return _ok_reply({"channel": {"id": self.dm(user).id}})

    def _page(self, items: list[Any], p: dict[str, Any], key: str) -> Reply:
        limit = int(p.get("limit") or 100)
        start = int(p.get("cursor") or 0)
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        return _ok_reply(
            {
                key: chunk,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    def m_conversations_history(self, p: dict[str, Any]) -> Reply:
        channel = self.channel(str(p.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        oldest = float(p.get("oldest") or 0)
        meta = str(p.get("include_all_metadata", "")).lower() in ("true", "1")
        top = [
            m.as_json(meta)
            for m in reversed(channel.messages)
            if (m.thread_ts is None or m.reply_broadcast) and float(m.ts) > oldest
        ]
        return self._page(top, p, "messages")

    def m_conversations_replies(self, p: dict[str, Any]) -> Reply:
        channel = self.channel(str(p.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        ts = p.get("ts")
        if not any(m.ts == ts for m in channel.messages):
            return _fail("thread_not_found")
        meta = str(p.get("include_all_metadata", "")).lower() in ("true", "1")
        thread = [m.as_json(meta) for m in channel.messages if m.ts == ts or m.thread_ts == ts]
        return self._page(thread, p, "messages")

    def m_conversations_list(self, p: dict[str, Any]) -> Reply:
        chans = [c.as_json() for c in self.channels.values() if not c.is_im]
        return self._page(chans, p, "channels")

    def m_users_lookupByEmail(self, p: dict[str, Any]) -> Reply:
        email = str(p.get("email", "")).lower()
        for user in self.users.values():
            if (user["profile"].get("email") or "").lower() == email:
                return _ok_reply({"user": user})
        return _fail("users_not_found")

    def m_files_getUploadURLExternal(self, p: dict[str, Any]) -> Reply:
        filename, length = str(p.get("filename") or ""), str(p.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return _fail("invalid_arguments")
        token = uuid.uuid4().hex
        upload = UploadedFile(
            id=f"F{next(self._ids):08d}",
            name=filename,
            length=int(length),
            token=token,
            alt_txt=p.get("alt_txt") or None,
        )
        self.files[upload.id] = upload
        return _ok_reply({"upload_url": f"{self.url}/upload/v1/{token}", "file_id": upload.id})

    def _upload(self, request: Request) -> Reply:
        token = request.path.removeprefix("/upload/v1/")
        with self.lock:
            upload = next((f for f in self.files.values() if f.token == token), None)
            if upload is None or upload.completed or request.method != "POST":
                return Reply(404, "Not Found", content_type="text/plain")
            upload.data = request.raw
        return Reply(200, f"OK - {len(request.raw)}", content_type="text/plain")

    def m_files_completeUploadExternal(self, p: dict[str, Any]) -> Reply:
        wanted = _json(p.get("files"))
        if not isinstance(wanted, list) or not wanted:
            return _fail("invalid_arguments")
        uploads = []
        for item in wanted:
            upload = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload.data is None or upload.completed:
                return _fail("file_not_found")
            uploads.append((upload, item.get("title")))
        channel = None
        if p.get("channel_id"):
            channel = self.channel(str(p["channel_id"]))
            if channel is None:
                return _fail("channel_not_found")
            if BOT_USER not in channel.members:
                return _fail("not_in_channel")
        for upload, title in uploads:
            upload.title, upload.completed = title or upload.name, True
            upload.shared_to = channel.id if channel else None
        if channel is not None:
            channel.messages.append(
                Message(
                    ts=self._ts(),
                    channel=channel.id,
                    text=str(p.get("initial_comment") or ""),
                    blocks=None,
                    metadata=None,
                    thread_ts=p.get("thread_ts") or None,
                    files=[u.as_json() for u, _ in uploads],
                )
            )
        return _ok_reply({"files": [{"id": u.id, "title": u.title} for u, _ in uploads]})

    def m_views_open(self, p: dict[str, Any]) -> Reply:
        trigger = str(p.get("trigger_id", ""))
        if trigger not in self.valid_triggers:
            return _fail("invalid_trigger_id")
        view = _json(p.get("view")) or {}
        view = {"id": f"V{next(self._ids):08d}", **view}
        self.views.append(view)
        return _ok_reply({"view": view})


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _ok(body: Any) -> bool:
    return isinstance(body, dict) and body.get("ok") is True


def _key_of(params: dict[str, Any]) -> str | None:
    meta = _json(params.get("metadata")) or {}
    return (meta.get("event_payload") or {}).get("key") if isinstance(meta, dict) else None


def _ok_reply(body: dict[str, Any]) -> Reply:
    return Reply(200, {"ok": True, **body})


def _fail(error: str) -> Reply:
    return Reply(200, {"ok": False, "error": error})
