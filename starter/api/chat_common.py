"""What the Slack and Twilio endpoints share: channel settings, answering in time, updates.

Slack wants an answer within 3 s and Twilio within 15 s. The work is a Temporal update
(``starter.incidents``); if it has not finished by the deadline the endpoint answers
anyway and the update's outcome is delivered later (Slack: the interaction's
response_url). Updates started this way keep running: nothing is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from activities.channels.settings import ChannelSettings, settings_from_env
from domain.incident import IncidentState
from domain.policy import Person, Policy
from starter import incidents as fw
from starter.api.context import ApiContext
from workflows.incident import IncidentWorkflow

log = logging.getLogger(__name__)
T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


def channel_settings(request: Request) -> ChannelSettings:
    """FIREWATCH_* settings; tests put their own on ``app.state.channel_settings``."""
    settings = getattr(request.app.state, "channel_settings", None)
    return settings if isinstance(settings, ChannelSettings) else settings_from_env()


async def within(
    work: Coroutine[Any, Any, T],
    seconds: float,
    *,
    late: Callable[[asyncio.Task[T]], Awaitable[None]] | None = None,
) -> asyncio.Task[T] | None:
    """Run ``work``; the finished task if it ended within ``seconds``, else None.

    A late task keeps running; ``late`` is awaited with it once it ends.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task
    if late is not None:

        async def follow_up() -> None:
            try:
                await asyncio.wait({task})
                await late(task)
            except Exception:
                log.exception("follow-up of a late action failed")

        spawn(follow_up())
    else:
        _background.add(task)
        task.add_done_callback(_background.discard)
    return None


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def incident_handle(
    ctx: ApiContext, incident_id: str, workflow_id: str | None = None
) -> WorkflowHandle[Any, Any]:
    """The incident's workflow: by INC id (the durable id mapping, then visibility), else the
    workflow id we were given."""
    client = await ctx.client()
    try:
        return await fw.handle_for(client, incident_id, store=ctx.store())
    except fw.IncidentNotFound:
        if workflow_id is None:
            raise
    except RPCError:  # servers without advanced visibility
        if workflow_id is None:
            raise
    handle = client.get_workflow_handle(workflow_id)
    state: IncidentState | None = await handle.query(IncidentWorkflow.state)
    if state is None or state.incident_id != incident_id:
        raise fw.IncidentNotFound(f"{incident_id} is closed")
    return handle


def outcome_text(task: asyncio.Task[Any], ok: Callable[[Any], str]) -> str:
    exc = task.exception()
    if exc is None:
        return ok(task.result())
    if isinstance(exc, fw.ActionRejected | fw.IncidentNotFound):
        return f"⚠️ {exc}"
    log.warning("chat action failed: %r", exc)
    return "⚠️ Firewatch could not do that right now (Temporal unavailable); try again."


_DIGITS = re.compile(r"\D")


def same_phone(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return _DIGITS.sub("", a).lstrip("0") == _DIGITS.sub("", b).lstrip("0")


def person_by_phone(policy: Policy, number: str) -> Person | None:
    return next((p for p in policy.roster.people if same_phone(p.phone, number)), None)


class RecentActions:
    """Swallows a repeat of the same action by the same person within a few seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window = window_s
        self._seen: dict[tuple[str, ...], float] = {}

    def first(self, *key: str) -> bool:
        now = time.monotonic()
        self._seen = {k: t for k, t in self._seen.items() if now - t < self._window}
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
