"""SMS and voice through Twilio's REST API (the ``twilio`` package, base URL configurable).

* SMS body: the message's one-line subject, for pages the reply instructions
  (``Reply ACK 1126001``, see :func:`formatting.sms_short_code`), and a ``(ref …)`` marker
  of the idempotency key. :meth:`TwilioSender.find` lists Messages to the number and looks
  for the marker when an earlier attempt's outcome is unknown.
* Voice: a call whose TwiML reads the summary. Calls carry no text to mark, so a call to
  the same number from our number created after the attempt began counts as ours.
* Throttling: Twilio queues at about one message per second per long-code number; we
  space our own sends per sending number (FIREWATCH_TWILIO_MPS) and back off on 429 /
  20429 with its Retry-After.

The twilio client is synchronous (requests); each call runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError, ref_marker
from activities.channels.formatting import plain, sms_short_code
from activities.channels.settings import ChannelSettings
from activities.models import Notification

log = logging.getLogger(__name__)

# Numbers that can never receive (invalid, landline, unsubscribed, not permitted).
PERMANENT_CODES = frozenset(
    {
        21211,
        21214,
        21217,
        21219,
        21401,
        21408,
        21421,
        21601,
        21606,
        21610,
        21612,
        21614,
        21215,
        13223,
        13224,
    }
)
AUTH_CODES = frozenset({20003, 20005, 20008})
THROTTLE_CODES = frozenset({20429, 14107})
MAX_LOCAL_WAIT_S = 5.0  # longer waits for our own throttle go back to Temporal
_quiet = logging.getLogger("firewatch.twilio.http")
_quiet.setLevel(logging.WARNING)  # twilio logs request bodies at INFO


class _Throttle:
    """Per sending number: at most ``rate`` calls a second, across the worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def reserve(self, number: str, rate: float) -> float:
        """Seconds to wait before this call may go out (the slot is taken)."""
        interval = 1.0 / rate if rate > 0 else 0.0
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(number, 0.0))
            wait = at - now
            if wait > MAX_LOCAL_WAIT_S:
                return wait
            self._next[number] = at + interval
            return wait


THROTTLE = _Throttle()


class _CapturingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """Keeps the last response so a 429's Retry-After header can be read."""

    captured: Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.captured = None  # the client is reused: never read an earlier call's answer
        response = super().request(*args, **kwargs)
        self.captured = response
        return response


def _retry_after(http: _CapturingHttpClient) -> float | None:
    if http.captured is None:
        return None
    for key, value in (http.captured.headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def map_twilio_error(err: Exception, http: _CapturingHttpClient, what: str) -> Exception:
    if isinstance(err, TwilioRestException):
        status, code = int(err.status or 0), int(err.code or 0)
        detail = f"Twilio {what}: {code} {err.msg}".strip()
        if status == 429 or code in THROTTLE_CODES:
            return TransientDeliveryError(
                f"Twilio rate limited {what} ({code})", retry_after=_retry_after(http)
            )
        if code in AUTH_CODES or status in (401, 403):
            return PermanentDeliveryError(f"Twilio {what}: authentication failed ({code})")
        if code in PERMANENT_CODES:
            return PermanentDeliveryError(detail)
        if status >= 500:
            return TransientDeliveryError(detail, maybe_sent=True)
        return PermanentDeliveryError(detail)
    if isinstance(err, requests.ConnectionError) and not isinstance(err, requests.ReadTimeout):
        return TransientDeliveryError(f"Twilio unreachable ({what})")
    if isinstance(err, (requests.RequestException, TwilioException, OSError)):
        return TransientDeliveryError(
            f"Twilio {what} failed: {type(err).__name__}", maybe_sent=True
        )
    return err


def sms_body(note: Notification) -> str:
    parts = [plain(note.subject)]
    code = sms_short_code(note.incident_id)
    if code and note.kind in ("page", "inform", "no_progress"):
        parts.append(f"Reply ACK {code} to acknowledge, RESOLVE {code} to resolve.")
    parts.append(f"({ref_marker(note.idempotency_key)})")
    return " ".join(parts)


def voice_twiml(note: Notification) -> str:
    code = sms_short_code(note.incident_id)
    spoken = plain(note.subject).replace("[", "").replace("]", "")
    text = f"Firewatch. {spoken}."
    follow = (
        f"To acknowledge, reply to the text message with A C K {' '.join(code)}." if code else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Say>{escape(text)}</Say><Pause length="1"/><Say>{escape(text)}</Say>'
        + (f"<Say>{escape(follow)}</Say>" if follow else "")
        + "</Response>"
    )


class TwilioSender:
    def __init__(self, settings: ChannelSettings, kind: Literal["sms", "voice"] = "sms") -> None:
        self._settings = settings
        self._kind = kind
        self._local = threading.local()

    def _client(self) -> tuple[Client, _CapturingHttpClient]:
        """This thread's client: its HTTP session keeps connections to Twilio open, so a
        page does not pay a new TCP and TLS handshake. One per thread, because the last
        response (for Retry-After) is read back after each call."""
        cached: tuple[Client, _CapturingHttpClient] | None = getattr(self._local, "client", None)
        if cached is not None:
            return cached
        s = self._settings
        assert s.twilio_account_sid and s.twilio_auth_token
        http = _CapturingHttpClient(timeout=s.http_timeout, logger=_quiet)
        client = Client(
            s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), http_client=http
        )
        client.api.base_url = s.twilio_base_url.rstrip("/")
        self._local.client = client, http
        return client, http

    @property
    def _from(self) -> str:
        assert self._settings.twilio_from
        return self._settings.twilio_from

    def _send_sync(self, note: Notification, address: str) -> str:
        wait = THROTTLE.reserve(self._from, self._settings.twilio_mps)
        if wait > MAX_LOCAL_WAIT_S:
            raise TransientDeliveryError(
                "Twilio: our own per-number throttle is full", retry_after=wait
            )
        if wait > 0:
            time.sleep(wait)
        client, http = self._client()
        what = "SMS" if self._kind == "sms" else "call"
        try:
            if self._kind == "sms":
                message = client.messages.create(to=address, from_=self._from, body=sms_body(note))
                return str(message.sid)
            call = client.calls.create(to=address, from_=self._from, twiml=voice_twiml(note))
            return str(call.sid)
        except Exception as err:
            raise map_twilio_error(err, http, what) from None

    async def send(self, note: Notification, address: str) -> str:
        return await asyncio.to_thread(self._send_sync, note, address)

    def _find_sync(self, note: Notification, address: str, since: datetime) -> str | None:
        client, http = self._client()
        try:
            if self._kind == "sms":
                marker = ref_marker(note.idempotency_key)
                for message in client.messages.list(to=address, from_=self._from, limit=100):
                    if marker in (message.body or ""):
                        return str(message.sid)
                return None
            for call in client.calls.list(to=address, from_=self._from, limit=50):
                created = call.date_created
                if created is not None and created >= since - timedelta(seconds=5):
                    return str(call.sid)
            return None
        except Exception as err:
            raise map_twilio_error(err, http, "lookup") from None

    async def find(self, note: Notification, address: str, since: datetime) -> str | None:
        return await asyncio.to_thread(self._find_sync, note, address, since)
