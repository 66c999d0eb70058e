"""A small real HTTP server on a loopback port, in a thread, for the protocol fakes.

Subclasses implement ``route``; this base gives them request parsing (query, form,
JSON), call recording, fault injection and "holds" (do the work, then keep the
response back until the test releases it: the window where a worker can die after the
provider acted but before the activity completed).

Outages: ``fake.answer_everything(reply)`` answers every call with ``reply`` and does
nothing (a provider answering 500 to everything), until ``answer_everything(None)``;
``fake.stop()`` then ``fake.start()`` takes it off its port and back (connection refused
meanwhile); :class:`BlackHole` holds a port and never answers (a provider that hangs).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Request:
    method: str  # HTTP verb
    path: str
    headers: dict[str, str]
    params: dict[str, Any]  # query + form + JSON body, merged
    raw: bytes
    at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Reply:
    status: int
    body: bytes | str | dict[str, Any] | list[Any]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    """Answer a matching call with ``reply`` instead of (or after, if ``after_effect``) doing it."""

    name: str  # the operation name the fake gives a call (e.g. chat.postMessage)
    reply: Reply
    match: Callable[[Request], bool] | None = None
    times: int = 1
    after_effect: bool = False


@dataclass
class Hold:
    name: str
    match: Callable[[Request], bool] | None
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    request: Request | None = None

    def wait_reached(self, timeout: float) -> bool:
        return self.reached.wait(timeout)

    def release(self) -> None:
        self.released.set()


@dataclass
class Call:
    name: str
    request: Request
    status: int = 0
    response: Any = None


class _Server(ThreadingHTTPServer):
    # The stdlib's backlog of 5 refuses connections in a burst (hundreds of pages at once),
    # which a real provider never does: the benchmarks would measure our fake, not Firewatch.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up: normal
            super().handle_error(request, client_address)


class FakeHttpServer(ABC):
    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.lock = threading.RLock()
        self.down: Reply | None = None  # see answer_everything
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- what subclasses provide ------------------------------------------------------

    def operation(self, request: Request) -> str:
        """A name for the call (used by faults, holds and the call log)."""
        return request.path

    @abstractmethod
    def route(self, name: str, request: Request) -> Reply:
        """Answer one call as the real API would."""

    # ---- test controls ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(
        self,
        name: str,
        reply: Reply,
        *,
        match: Callable[[Request], bool] | None = None,
        times: int = 1,
        after_effect: bool = False,
    ) -> Fault:
        fault = Fault(name, reply, match, times, after_effect)
        with self.lock:
            self.faults.append(fault)
        return fault

    def hold(self, name: str, match: Callable[[Request], bool] | None = None) -> Hold:
        hold = Hold(name, match)
        with self.lock:
            self.holds.append(hold)
        return hold

    def answer_everything(self, reply: Reply | None) -> None:
        """An outage: every call is recorded and answered with ``reply``, and nothing is done.
        ``None`` ends it."""
        with self.lock:
            self.down = reply

    def calls_to(self, name: str, ok_only: bool = False) -> list[Call]:
        with self.lock:
            return [
                c for c in self.calls if c.name == name and (not ok_only or 200 <= c.status < 300)
            ]

    # ---- plumbing ---------------------------------------------------------------------

    def _take_fault(self, name: str, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.name == name
                    and fault.times > 0
                    and (fault.match is None or fault.match(request))
                ):
                    fault.times -= 1
                    return fault
        return None

    def _take_hold(self, name: str, request: Request) -> Hold | None:
        with self.lock:
            for hold in self.holds:
                if (
                    hold.name == name
                    and not hold.reached.is_set()
                    and (hold.match is None or hold.match(request))
                ):
                    hold.request = request
                    return hold
        return None

    def dispatch(self, request: Request) -> Reply:
        name = self.operation(request)
        call = Call(name, request)
        with self.lock:
            self.calls.append(call)
            down = self.down
        if down is not None:
            call.status, call.response = down.status, down.body
            return down
        fault = self._take_fault(name, request)
        if fault is not None and not fault.after_effect:
            reply = fault.reply
        else:
            try:
                reply = self.route(name, request)
            except Exception as exc:  # a bug in the fake shows up as a 500 with the reason
                reply = Reply(500, {"error": f"fake server error: {exc!r}"})
            if fault is not None:
                reply = fault.reply
        call.status = reply.status
        call.response = reply.body
        hold = self._take_hold(name, request)
        if hold is not None:
            hold.reached.set()
            hold.released.wait(120)
        return reply

    def start(self) -> FakeHttpServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are written separately: without this, a kept-alive
            # connection waits out the client's delayed ACK (40 ms) on every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
                ctype = (self.headers.get("Content-Type") or "").lower()
                if raw and "json" in ctype:
                    try:
                        body = json.loads(raw)
                        if isinstance(body, dict):
                            params.update(body)
                    except ValueError:
                        pass
                elif raw and "form" in ctype:
                    params.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
                request = Request(self.command, parts.path, dict(self.headers.items()), params, raw)
                reply = fake.dispatch(request)
                body = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller died while we held the answer back

            do_GET = _handle
            do_POST = _handle

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            for hold in self.holds:
                hold.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BlackHole:
    """A provider that hangs: a loopback port that accepts connections and never answers.

    Requests are left unread and unanswered until the caller's own timeout; ``stop`` closes
    the port and every connection it accepted, so a fake can take the port over (``start``
    after ``stop``: the provider is back). ``connections`` counts what it swallowed.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.connections = 0
        self._accepted: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BlackHole:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            with self._lock:
                self._accepted.append(conn)
                self.connections += 1

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if listener is not None:
            listener.close()
        with self._lock:
            for conn in self._accepted:
                with contextlib.suppress(OSError):
                    conn.close()
            self._accepted.clear()

    def __enter__(self) -> BlackHole:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
