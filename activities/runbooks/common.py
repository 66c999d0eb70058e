"""What checks and mitigations share: heartbeats, short texts, env headers, HTTP errors, argv.

The short texts go into the one-line digest pages carry, so they are written for people:
``120ms``, ``2.3s``, ``unreachable: api.madplan.com``, ``timed out after 10s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from activities.heartbeating import heartbeating as shared_heartbeating
from domain.durations import format_duration

T = TypeVar("T")

HEARTBEAT_EVERY_S = 2.0
# How long a killed command's pipes may take to close before we stop waiting for them.
KILL_GRACE_S = 5.0
# What an HTTP check or action reads of an answer at most (a health page, a status JSON).
MAX_ANSWER_BYTES = 1024 * 1024


# ---- heartbeats ---------------------------------------------------------------------------


async def heartbeating(call: Awaitable[T], every: float | None = None) -> T:
    """``activities.heartbeating.heartbeating`` at runbook pace (:data:`HEARTBEAT_EVERY_S`),
    giving a cancelled command :data:`KILL_GRACE_S` to be killed."""
    return await shared_heartbeating(call, every or HEARTBEAT_EVERY_S, cancel_grace_s=KILL_GRACE_S)


# ---- short texts --------------------------------------------------------------------------


def elapsed(seconds: float) -> str:
    """A measured time: ``120ms``, ``2.3s``, ``14s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    return f"{round(seconds)}s"


def span(delta: timedelta) -> str:
    """A configured time: ``500ms``, ``1s``, ``1.5s``, ``1m30s``."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds == int(seconds):
        return format_duration(delta)
    return f"{seconds:g}s"


def number(value: float) -> str:
    """A measured value, short: ``0.12``, ``0.0123``, ``3``, ``1.25``, ``1234``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def cap(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying so at the end when cut."""
    if len(text) <= limit:
        return text
    note = f"\n[cut at {limit} characters]"
    return text[: max(limit - len(note), 0)] + note


def host_of(url: str) -> str:
    """``api.madplan.com``, or ``127.0.0.1:8080`` when the URL names a port."""
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


# ---- secrets from the environment -----------------------------------------------------------


class MissingEnv(Exception):
    """A header's environment variable is not set (the message names it, never a value)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not set")
        self.name = name


def env_headers(wanted: Mapping[str, str], environ: Mapping[str, str] | None) -> dict[str, str]:
    """``{header: env var NAME}`` → ``{header: value}``, read now. Raises :class:`MissingEnv`."""
    env = os.environ if environ is None else environ
    headers = {}
    for header, name in wanted.items():
        value = env.get(name)
        if not value:
            raise MissingEnv(name)
        headers[header] = value
    return headers


# ---- HTTP ---------------------------------------------------------------------------------


def http_failure(exc: BaseException, url: str, timeout: timedelta) -> str:
    """What went wrong talking to ``url``, in a few words."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {span(timeout)}"
    if isinstance(exc, httpx.ConnectError):
        return f"unreachable: {host_of(url)}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"bad URL: {url}"
    return f"connection failed: {host_of(url)} ({type(exc).__name__})"


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    seconds: float  # from sending the request to the end of the (capped) body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> Answer:
    """One request; the answer's body read up to :data:`MAX_ANSWER_BYTES`."""
    started = time.monotonic()
    async with client.stream(method, url, headers=headers, params=params, content=content) as r:
        body = bytearray()
        async for chunk in r.aiter_bytes():
            body += chunk
            if len(body) >= MAX_ANSWER_BYTES:
                break
        return Answer(r.status_code, r.reason_phrase, bytes(body), time.monotonic() - started)


# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandRun:
    exit_code: int | None  # None: killed at the timeout
    output: str  # stdout and stderr interleaved, at most ``max_output`` characters
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    @property
    def exit_text(self) -> str:
        """``exit 2``, or ``killed by SIGKILL`` for a signal."""
        code = self.exit_code
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit {code}"


async def run_argv(argv: Sequence[str], *, timeout: timedelta, max_output: int) -> CommandRun:
    """Run ``argv`` exactly as given: no shell, stdin from /dev/null, in a session of its own
    (so the timeout or a cancellation kills it and everything it started). Raises OSError when
    the program cannot be started (not found, not executable)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    kept = bytearray()
    keep_bytes = max_output * 4 + 4  # enough bytes for max_output UTF-8 characters
    total = 0

    async def read_all() -> None:
        nonlocal total
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            total += len(chunk)
            if len(kept) < keep_bytes:
                kept.extend(chunk[: keep_bytes - len(kept)])
        await proc.wait()

    timed_out = False
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            await read_all()
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(KILL_GRACE_S):
                    await proc.wait()
    text = kept.decode("utf-8", errors="replace")
    if total > len(kept) or len(text) > max_output:
        note = f"\n[output cut at {max_output} characters]"
        text = text[: max(max_output - len(note), 0)] + note
    return CommandRun(
        exit_code=None if timed_out else proc.returncode,
        output=text,
        seconds=time.monotonic() - started,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
