"""Fixtures for the channel tests: local Slack and Twilio servers, aiosmtpd, settings."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.channels.settings import ChannelSettings
from activities.models import Notification
from domain.policy import Person, Policy
from tests.channels.fake_http import free_port
from tests.channels.fake_slack import TOKEN, FakeSlack
from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[Envelope] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def with_roster_users(fake: FakeSlack) -> FakeSlack:
    """The default roster's people as Slack users, and one outsider."""
    for uid, email in (
        ("U0ALICE", "alice@madplan.example"),
        ("U0BOB", "bob@madplan.example"),
        ("U0CAROL", "carol@madplan.example"),
        ("U0DAVE", "dave@madplan.example"),
        ("U0ERIN", "erin@madplan.example"),
        ("U0FRANK", "frank@madplan.example"),
        ("U0OUTSIDER", "mallory@elsewhere.example"),
    ):
        fake.add_user(uid, email)
    return fake


def fake_channels_env(slack: FakeSlack, twilio: FakeTwilio) -> dict[str, str]:
    """The settings a worker process needs to deliver through these fakes."""
    return {
        "FIREWATCH_SLACK_BOT_TOKEN": TOKEN,
        "FIREWATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "FIREWATCH_SLACK_BASE_URL": slack.api_url,
        "FIREWATCH_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "FIREWATCH_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "FIREWATCH_TWILIO_FROM": FROM_NUMBER,
        "FIREWATCH_TWILIO_BASE_URL": twilio.url,
        "FIREWATCH_HTTP_TIMEOUT": "3",
    }


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        assert isinstance(fake, FakeSlack)
        yield with_roster_users(fake)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        assert isinstance(fake, FakeTwilio)
        yield fake


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def channel_settings(
    slack: FakeSlack | None = None,
    twilio: FakeTwilio | None = None,
    smtp_port: int | None = None,
    **extra: Any,
) -> ChannelSettings:
    values: dict[str, Any] = {"http_timeout": 5.0, "twilio_mps": 50.0}
    if slack is not None:
        values.update(
            slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_base_url=slack.api_url
        )
    if twilio is not None:
        values.update(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from=FROM_NUMBER,
            twilio_base_url=twilio.url,
        )
    if smtp_port is not None:
        values.update(
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_from="firewatch@madplan.example",
            smtp_starttls=False,
        )
    values.update(extra)
    # A settings group reads no environment: the developer's own FIREWATCH_* never leak in.
    return ChannelSettings(**values)


def note_for(
    person: Person | None,
    *,
    kind: str = "page",
    step: str = "page:e0:l0:0",
    incident_id: str = "INC-2026-11-26-001",
    recipient: str | None = None,
    channel_role: str | None = None,
) -> Notification:
    recipient = recipient or (person.name if person else "#incidents")
    return Notification(
        idempotency_key=f"{incident_id}:{step}:{recipient}:outbox",
        incident_id=incident_id,
        workflow_id="incident/direct/test",
        kind=kind,
        recipient=recipient,
        person=person,
        subject=f"[P1] {incident_id} Page - api: API p99 > 5s",
        text=f"**Incident ID**: {incident_id}\n**Service**: api\n\nAck: firewatch ack",
        scheduled_at=datetime.now(UTC),
        channel_role=channel_role,  # type: ignore[arg-type]
    )


def person(policy: Policy, name: str) -> Person:
    found = policy.roster.person(name)
    assert found is not None
    return found


@pytest.fixture(scope="module")
async def namespace_client(dev_env: WorkflowEnvironment) -> Client:
    """A namespace of its own on the session's dev server: INC ids are per data dir, so
    sharing a namespace with other suites could make an INC id ambiguous."""
    from tests.api.api_support import register_namespace

    return await register_namespace(dev_env, f"fw-ch-{uuid.uuid4().hex[:8]}")
