"""``/incident oncall [TIME]`` and ``/incident override ROLE PERSON FROM TO|DURATION [reason]``.

The Slack side of ``firewatch oncall`` and ``firewatch override add``: the same rules (the
actor must be on the roster, times without an offset are the team's), answered ephemerally.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from domain import rotation, schedule
from domain.durations import parse_duration
from domain.policy import ROLE_TITLES, Person, Role
from domain.schedule import ScheduleError
from starter.api.context import ApiContext
from starter.api.schedules import make_override, schedules

ONCALL_USAGE = "`/incident oncall [2026-12-24T03:00]`"
OVERRIDE_USAGE = (
    "`/incident override <primary|secondary|team_lead|engineering_manager> <person>"
    ' <from: now|2026-12-24T09:00> <to: 2026-12-24T17:00|8h> ["reason"]`'
)


def _reply(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def oncall(ctx: ApiContext, words: list[str]) -> JSONResponse:
    policy = ctx.policy()
    try:
        at = schedule.aware(_time(words[0]), policy.roster) if words else datetime.now(UTC)
    except ValueError:
        return _reply(f"⚠️ Give a time like 2026-12-24T03:00.\n{ONCALL_USAGE}")
    stored = await asyncio.to_thread(schedules(ctx).covering, at)
    live = rotation.with_overrides(policy.roster, [o.as_override() for o in stored])
    local = at.astimezone(schedule.team_timezone(policy.roster))
    lines = [f"*On call at {local:%a %d %b %H:%M %Z}*"]
    for role, person in rotation.on_call(live, at).items():
        lines.append(f"• {ROLE_TITLES[role]}: {person.label}")
    return _reply("\n".join(lines))


async def override(ctx: ApiContext, actor: Person, words: list[str]) -> JSONResponse:
    if len(words) < 4:
        return _reply(f"⚠️ Not enough to go on.\n{OVERRIDE_USAGE}")
    role_word, person, start_word, end_word, *rest = words
    try:
        role = Role(role_word.lower().replace("-", "_"))
    except ValueError:
        return _reply(f"⚠️ Unknown role {role_word!r}.\n{OVERRIDE_USAGE}")
    try:
        start = None if start_word.lower() == "now" else _time(start_word)
        base = schedule.aware(start, ctx.policy().roster) if start else datetime.now(UTC)
        end = base + parse_duration(end_word) if end_word[-1:].isalpha() else _time(end_word)
    except ValueError:
        return _reply(f"⚠️ Give times like 2026-12-24T09:00, or a length like 8h.\n{OVERRIDE_USAGE}")
    try:
        made = await make_override(
            ctx, role, person, start, end, actor=actor.name, reason=" ".join(rest) or None
        )
    except ScheduleError as err:
        return _reply(f"⚠️ Not added: {err}.")
    return _reply(f"✅ Added override {made[0].describe()}.")
