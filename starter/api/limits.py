"""Admission control in front of the app: a bound on requests in flight, and on body size.

Both answer before any parsing or Temporal call, so a refused request starts nothing.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.api.errors import PAGERDUTY_PATHS

# Health and metrics stay answerable while the API is saturated.
_UNLIMITED = ("/health", "/metrics")
# Alertmanager and Grafana retry 5xx only; a 429 would drop their notification.
_RETRY_ONLY_ON_5XX = ("/alerts/alertmanager", "/alerts/grafana")


async def _send_json(
    send: Send, status: int, path: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    if path in PAGERDUTY_PATHS:
        kind = "throttle event" if status == 429 else "invalid event"
        body: dict[str, object] = {"status": kind, "message": detail, "errors": [detail]}
    else:
        body = {"detail": detail, "errors": []}
    raw = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": raw})


class InFlightLimit:
    """At most ``limit`` requests at once; the rest get 429 (503 for webhooks) + Retry-After."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = str(retry_after_s)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_UNLIMITED):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            status = 503 if path in _RETRY_ONLY_ON_5XX else 429
            headers = {"Retry-After": self.retry_after}
            await _send_json(send, status, path, "overloaded; retry later", headers)
            return
        # A plain counter is enough: the event loop runs one coroutine at a time.
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    """Reads the whole body up front (at most ``limit`` bytes), then replays it to the app."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        too_large = f"request body over {self.limit // 1024} KB"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, path, "invalid Content-Length")
                    return
                if declared > self.limit:
                    await _send_json(send, 413, path, too_large)
                    return
        try:
            body = await receive_body(receive, self.limit)
        except BodyTooLarge:  # chunked upload without Content-Length
            await _send_json(send, 413, path, too_large)
            return
        if body is not None:  # else the client went away
            await self.app(scope, replaying(whole_body(body), receive), send)


class BodyTooLarge(Exception):
    pass


async def receive_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def whole_body(body: bytes) -> Message:
    return {"type": "http.request", "body": body, "more_body": False}


def replaying(first: Message, receive: Receive) -> Receive:
    """``receive`` that hands out ``first`` again, then goes on with the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()  # e.g. wait for the disconnect, as Starlette expects

    return replay
