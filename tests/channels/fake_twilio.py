"""A local Twilio REST API (2010-04-01): Messages and Calls, as the twilio package calls them.

``client.api.base_url = fake.url``: form-encoded POSTs with Basic auth (account sid and
auth token) to ``/2010-04-01/Accounts/{sid}/Messages.json`` and ``Calls.json``;
answers 201 with the resource (``"status": "queued"``), list pages for GET, and
Twilio's error body ``{"code", "message", "more_info", "status"}`` otherwise.

Faults: ``bad_numbers`` (number → error code, e.g. 21211 invalid 'To'),
``fake.throttle(retry_after)`` (429 / 20429), ``fake.server_error()``; holds from
:class:`FakeHttpServer`.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from tests.channels.fake_http import FakeHttpServer, Fault, Reply, Request

ACCOUNT_SID = "AC" + "0" * 30 + "01"
AUTH_TOKEN = "twilio-test-auth-token"
FROM_NUMBER = "+15005550006"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/(?P<kind>Messages|Calls)\.json$")

ERRORS = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21214: (400, "'To' phone number cannot be reached"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
}


def twilio_error(code: int, to: str = "") -> Reply:
    status, message = ERRORS.get(code, (400, "Error"))
    return Reply(
        status,
        {
            "code": code,
            "message": message.format(to=to),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio(FakeHttpServer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []  # newest last
        self.calls_made: list[dict[str, Any]] = []
        self.bad_numbers: dict[str, int] = {}

    def operation(self, request: Request) -> str:
        match = _PATH.match(request.path)
        if not match:
            return request.path
        return f"{request.method} {match['kind']}"

    def throttle(self, retry_after: int = 1, name: str = "POST Messages", **kw: Any) -> Fault:
        reply = twilio_error(20429)
        reply.headers["Retry-After"] = str(retry_after)
        return self.inject(name, reply, **kw)

    def server_error(self, name: str = "POST Messages", **kw: Any) -> Fault:
        return self.inject(
            name,
            Reply(
                500,
                {"code": 20500, "message": "Internal Server Error", "more_info": "", "status": 500},
            ),
            **kw,
        )

    def sms_to(self, number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == number]

    def route(self, name: str, request: Request) -> Reply:
        match = _PATH.match(request.path)
        if not match:
            return Reply(
                404,
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )
        auth = request.header("Authorization") or ""
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if auth != expected or match["sid"] != self.account_sid:
            return twilio_error(20003)
        kind = match["kind"]
        with self.lock:
            if request.method == "GET":
                return self._list(kind, request.params)
            return self._create(kind, request.params)

    def _create(self, kind: str, p: dict[str, Any]) -> Reply:
        to, from_ = str(p.get("To", "")), str(p.get("From", ""))
        if not to:
            return Reply(
                400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
            )
        if not _E164.match(to):
            return twilio_error(21211, to)
        if to in self.bad_numbers:
            return twilio_error(self.bad_numbers[to], to)
        now = format_datetime(datetime.now(UTC), usegmt=False)
        if kind == "Messages":
            if not p.get("Body"):
                return Reply(
                    400, {"code": 21602, "message": "Message body is required.", "status": 400}
                )
            sid = "SM" + secrets.token_hex(16)
            resource = {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": p["Body"],
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": from_,
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            }
            self.messages.append(resource)
            return Reply(201, resource)
        if not (p.get("Twiml") or p.get("Url") or p.get("ApplicationSid")):
            return Reply(
                400, {"code": 21205, "message": "Url parameter is required.", "status": 400}
            )
        sid = "CA" + secrets.token_hex(16)
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "from": from_,
            "to": to,
            "sid": sid,
            "status": "queued",
            "start_time": None,
            "end_time": None,
            "duration": None,
            "twiml": p.get("Twiml"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }
        self.calls_made.append(resource)
        return Reply(201, resource)

    def _list(self, kind: str, p: dict[str, Any]) -> Reply:
        items = self.messages if kind == "Messages" else self.calls_made
        rows = [
            r
            for r in reversed(items)
            if (not p.get("To") or r["to"] == p["To"])
            and (not p.get("From") or r["from"] == p["From"])
        ]
        size = int(p.get("PageSize") or 50)
        key = kind.lower()
        base = f"/2010-04-01/Accounts/{self.account_sid}/{kind}.json"
        return Reply(
            200,
            {
                key: rows[:size],
                "end": min(size, len(rows)) - 1,
                "first_page_uri": f"{base}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{base}?PageSize={size}&Page=0",
            },
        )
