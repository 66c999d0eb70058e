"""Email over SMTP (aiosmtplib): the same templates as plain text plus HTML.

STARTTLS when FIREWATCH_SMTP_STARTTLS (the default) and credentials from the
environment. The Message-ID is derived from the idempotency key, so if the outcome of
an attempt is unknown (the connection dropped after DATA) and the mail is sent again,
mail stores see the same message id and thread or de-duplicate it. SMTP cannot be
asked whether a message was delivered, so email has no ``find``.
"""

from __future__ import annotations

import hashlib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError
from activities.channels.formatting import plain, to_html
from activities.channels.settings import ChannelSettings
from activities.models import Notification


def message_id(key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "firewatch.local"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<firewatch.{digest}@{domain}>"


def build_email(note: Notification, sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = plain(note.subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = (
        message_id(note.idempotency_key, sender) if note.idempotency_key else make_msgid()
    )
    msg["X-Firewatch-Incident"] = note.incident_id
    msg["X-Firewatch-Key"] = note.idempotency_key
    msg.set_content(plain(note.text))
    msg.add_alternative(note.html or to_html(note.text), subtype="html")
    return msg


class EmailSender:
    def __init__(self, settings: ChannelSettings) -> None:
        self._settings = settings

    async def send(self, note: Notification, address: str) -> str:
        s = self._settings
        assert s.smtp_host and s.smtp_from
        msg = build_email(note, s.smtp_from, address)
        tls_context: ssl.SSLContext | None = None
        if s.smtp_starttls and s.smtp_ca_file:
            tls_context = ssl.create_default_context(cafile=s.smtp_ca_file)
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=bool(s.smtp_starttls),
                tls_context=tls_context,
                timeout=s.http_timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as err:
            raise PermanentDeliveryError(f"SMTP authentication failed ({err.code})") from None
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            if codes and all(400 <= c < 500 for c in codes):
                raise TransientDeliveryError(f"SMTP recipient deferred ({codes[0]})") from None
            raise PermanentDeliveryError(f"SMTP recipient refused: {address}") from None
        except aiosmtplib.SMTPResponseException as err:
            if 400 <= err.code < 500:
                raise TransientDeliveryError(f"SMTP {err.code} {err.message}") from None
            raise PermanentDeliveryError(f"SMTP {err.code} {err.message}") from None
        except aiosmtplib.SMTPConnectError as err:
            raise TransientDeliveryError(f"SMTP server unreachable: {err}") from None
        except (aiosmtplib.SMTPException, TimeoutError, OSError) as err:
            raise TransientDeliveryError(
                f"SMTP failed: {type(err).__name__}", maybe_sent=True
            ) from None
        return str(msg["Message-ID"])
