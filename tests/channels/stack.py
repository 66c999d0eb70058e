"""A Firewatch stack wired to the local Slack / Twilio / SMTP peers, for end-to-end tests.

The worker (in this process) delivers through the fakes; the API app is called in
process through httpx's ASGI transport, with requests signed as Slack and Twilio sign them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from activities.channels.settings import ChannelSettings
from activities.config import PolicyStore
from domain.policy import Policy
from starter.api.app import create_app
from starter.api.context import ApiSettings
from tests.channels.conftest import SIGNING_SECRET
from tests.channels.fake_twilio import AUTH_TOKEN
from worker import build_worker

PUBLIC_URL = "https://firewatch.example.com"


def slack_signature(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(body: bytes, *, age_s: int = 0, bad: bool = False) -> dict[str, str]:
    timestamp = int(time.time()) - age_s
    signature = slack_signature(body, timestamp)
    if bad:
        signature = slack_signature(body, timestamp, secret="not-the-secret")
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }


def select_action(user: str, action_id: str, value: str, response_url: str) -> bytes:
    """A block_actions payload for a static_select: the choice's value in selected_option."""
    body = parse_qs(block_action(user, action_id, value, response_url).decode())
    payload = json.loads(body["payload"][0])
    (action,) = payload["actions"]
    del action["value"]
    action |= {"type": "static_select", "selected_option": {"value": value}}
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_action(
    user: str, action_id: str, value: str, response_url: str, trigger_id: str | None = None
) -> bytes:
    """An interaction payload shaped like Slack's block_actions."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0MADPLAN"},
        "api_app_id": "A0FIREWATCH",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": "1.0",
            "channel_id": "C0",
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        "team": {"id": "T0MADPLAN", "domain": "madplan"},
        "channel": {"id": "C0", "name": "incidents"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "firewatch_actions",
                "value": value,
                "action_ts": f"{time.time():.6f}",
                "text": {"type": "plain_text", "text": action_id},
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission(user: str, view: dict[str, Any], values: dict[str, Any]) -> bytes:
    payload = {
        "type": "view_submission",
        "team": {"id": "T0MADPLAN", "domain": "madplan"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0MADPLAN"},
        "api_app_id": "A0FIREWATCH",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.x",
        "view": {**view, "state": {"values": values}, "hash": "1.x"},
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_command(user: str, text: str, response_url: str) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T0MADPLAN",
            "team_domain": "madplan",
            "channel_id": "C0",
            "channel_name": "incidents",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/incident",
            "text": text,
            "api_app_id": "A0FIREWATCH",
            "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int % 10**12}.y",
        }
    ).encode()


def twilio_form(from_: str, body: str, *, to: str = "+15005550006") -> dict[str, str]:
    return {
        "ToCountry": "US",
        "SmsMessageSid": "SM" + uuid.uuid4().hex,
        "NumMedia": "0",
        "SmsSid": "SM" + uuid.uuid4().hex,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 30 + "01",
        "From": from_,
        "ApiVersion": "2010-04-01",
    }


def twilio_headers(form: dict[str, str], url: str, token: str = AUTH_TOKEN) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(token).compute_signature(url, form),
        "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
    }


@dataclass
class Stack:
    client: Client
    queue: str
    http: httpx.AsyncClient
    data: Path
    settings: ChannelSettings


@asynccontextmanager
async def firewatch_stack(
    client: Client,
    policy: Policy,
    data: Path,
    settings: ChannelSettings,
    executor: ThreadPoolExecutor,
) -> AsyncIterator[Stack]:
    queue = f"fw-ch-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        client,
        policy=PolicyStore(policy=policy),
        data=data,
        task_queue=queue,
        executor=executor,
        channels=settings,
    )
    app = create_app(
        client=client,
        policy=policy,
        data=data,
        settings=ApiSettings(task_queue=queue, worker_timeout_s=15),
    )
    app.state.channel_settings = settings
    transport = httpx.ASGITransport(app=app)
    async with (
        worker,
        httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, timeout=30) as http,
    ):
        yield Stack(client=client, queue=queue, http=http, data=data, settings=settings)
