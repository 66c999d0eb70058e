"""EmailSender against aiosmtpd: plain text + HTML, STARTTLS with AUTH, failures."""

from __future__ import annotations

import email
import email.policy
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError
from activities.channels.email import EmailSender
from domain.policy import Policy
from tests.channels.conftest import Mailbox, channel_settings, note_for, person
from tests.channels.fake_http import free_port


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


async def test_plain_and_html_parts(mailbox: tuple[Mailbox, int], default_policy: Policy) -> None:
    box, port = mailbox
    note = note_for(person(default_policy, "alice")).model_copy(
        update={"idempotency_key": "INC:page:alice:email"}
    )
    msg_id = await EmailSender(channel_settings(smtp_port=port)).send(note, "alice@madplan.example")
    [envelope] = box.messages
    assert envelope.mail_from == "firewatch@madplan.example"
    assert envelope.rcpt_tos == ["alice@madplan.example"]
    msg = parse(envelope.original_content or b"")
    assert msg["Subject"] == "[P1] INC-2026-11-26-001 Page - api: API p99 > 5s"
    assert msg["Message-ID"] == msg_id and msg_id.endswith("@madplan.example>")
    assert msg["X-Firewatch-Key"] == "INC:page:alice:email"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "Incident ID: INC-2026-11-26-001" in text.get_content()
    assert "<strong>Incident ID</strong>: INC-2026-11-26-001" in html.get_content()


async def test_same_key_same_message_id(
    mailbox: tuple[Mailbox, int], default_policy: Policy
) -> None:
    _, port = mailbox
    sender = EmailSender(channel_settings(smtp_port=port))
    note = note_for(person(default_policy, "alice"))
    assert await sender.send(note, "a@x.example") == await sender.send(note, "a@x.example")


async def test_starttls_and_login(tls_cert: tuple[Path, Path], default_policy: Policy) -> None:
    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    seen: list[tuple[str, str]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((data.login.decode(), data.password.decode()))
        ok = data.login == b"firewatch" and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        settings = channel_settings(
            smtp_port=port,
            smtp_starttls=True,
            smtp_ca_file=str(cert),
            smtp_username="firewatch",
            smtp_password="s3cret",
        )
        await EmailSender(settings).send(
            note_for(person(default_policy, "bob")), "bob@madplan.example"
        )
        assert len(box.messages) == 1 and seen == [("firewatch", "s3cret")]

        wrong = settings.model_copy(
            update={"smtp_password": settings.smtp_password.__class__("nope")}
        )
        with pytest.raises(PermanentDeliveryError, match="authentication"):
            await EmailSender(wrong).send(
                note_for(person(default_policy, "bob")), "bob@madplan.example"
            )
        assert len(box.messages) == 1
    finally:
        controller.stop()


async def test_refused_recipient_is_permanent(
    mailbox: tuple[Mailbox, int], default_policy: Policy
) -> None:
    box, port = mailbox
    box.refuse.add("gone@madplan.example")
    with pytest.raises(PermanentDeliveryError, match="refused"):
        await EmailSender(channel_settings(smtp_port=port)).send(
            note_for(person(default_policy, "bob")), "gone@madplan.example"
        )
    assert box.messages == []


async def test_unreachable_server_is_transient(default_policy: Policy) -> None:
    with pytest.raises(TransientDeliveryError):
        await EmailSender(channel_settings(smtp_port=free_port())).send(
            note_for(person(default_policy, "bob")), "bob@madplan.example"
        )


def test_a_given_html_body_is_sent_as_is() -> None:
    """The monthly report's page (charts inline) goes out as the HTML part, the text beside."""
    from datetime import UTC, datetime

    from activities.channels.email import build_email
    from activities.models import Notification

    page = (
        '<!doctype html><html><body><img alt="Volume" src="data:image/png;base64,iVBO">'
        "</body></html>"
    )
    note = Notification(
        idempotency_key="report:2026-11:engineering-alerts@company.com:outbox",
        incident_id="report/monthly",
        workflow_id="report/monthly",
        kind="monthly_report",
        recipient="engineering-alerts@company.com",
        subject="Firewatch monthly report 2026-11: 38 incidents",
        text="Firewatch report 2026-11",
        scheduled_at=datetime(2026, 12, 1, 14, tzinfo=UTC),
        channel_role="email",
        html=page,
    )
    msg = build_email(note, "firewatch@example.com", note.recipient)
    parts = {part.get_content_type(): part.get_content() for part in msg.iter_parts()}
    assert parts["text/html"].strip() == page
    assert parts["text/plain"].strip() == "Firewatch report 2026-11"
