"""The on-call schedule at run time: who is on call, the coming shifts, overrides and swaps,
and the calendar feeds.

* ``GET /oncall?at=…`` answers for any instant; ``GET /schedule?weeks=4`` lists the shifts.
* ``POST /overrides``, ``GET /overrides``, ``DELETE /overrides/{id}?by=…``,
  ``GET /overrides/audit`` and ``POST /swaps`` change the schedule. ``by`` must be on the
  roster. A refused change (someone not on the roster, an end before the start, a start in
  the past, an overlap) is answered 422 or 409 with the reason, and stores nothing.
* ``GET /schedules/{role}.ics`` and ``GET /people/{name}.ics`` are the calendar feeds. A
  calendar app cannot send a Bearer token, so each feed has its own token in its URL
  (``?token=…``, see ``starter.secrets.feed_token``); ``GET /calendars`` lists the
  subscribe URLs and ``POST /calendars/rotate`` replaces every token.

Times without an offset are the team's local time (the primary rotation's zone). Overrides
live in Firewatch's database; pages look them up when they are sent (``activities.people``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, Field

from domain import rotation, schedule
from domain.calendar_feed import render_feed
from domain.policy import ROLE_TITLES, Override, Policy, Role
from domain.schedule import ScheduleConflict, ScheduledOverride, ScheduleError, Segment
from starter.api.auth import require_api_token, same_secret
from starter.api.chat_common import channel_settings
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ApiError,
    ErrorBody,
)
from starter.secrets import feed_token, load_secrets, rotate_calendar_secret
from storage.schedules import AuditEntry, Schedules

FEED_WEEKS = 8  # how far ahead the calendar feeds reach
FEED_PAST = timedelta(days=7)  # and how far back (the current shift's start)

router = APIRouter(
    tags=["schedule"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)
feeds = APIRouter(tags=["schedule"], responses=COMMON_RESPONSES)


def schedules(ctx: ApiContext) -> Schedules:
    return Schedules(ctx.store().database)


def _refused(err: ScheduleError) -> ApiError:
    return ApiError(409 if isinstance(err, ScheduleConflict) else 422, str(err))


def _actor(policy: Policy, by: str) -> str:
    if policy.roster.person(by) is None:
        raise ApiError(403, f"{by!r} is not on the roster; only roster people change the schedule")
    return by


def _instant(value: str) -> datetime:
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, f"`at` must be an ISO 8601 time like 2026-12-24T03:00: {value!r}"
        ) from None
    if not _YEARS[0] <= found.year <= _YEARS[1]:  # the rota's arithmetic, and sense
        raise ApiError(422, f"`at` must be in the years {_YEARS[0]}–{_YEARS[1]}: {value!r}")
    return found


_YEARS = (1970, 2999)


# ---- who is on call -------------------------------------------------------------------------


class OnCallEntry(BaseModel):
    role: Role
    title: str
    name: str
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    slack_user_id: str | None = None
    contact_order: list[str] = Field(default_factory=list, description="Paging order")
    override: int | None = Field(default=None, description="The run-time override in force")
    next_handoff_at: datetime | None = Field(default=None, description="Rotations only")
    next_name: str | None = None


class OnCall(BaseModel):
    at: datetime
    team: str
    timezone: str | None = Field(
        default=None, description="The team's zone: times without an offset are read in it"
    )
    roles: list[OnCallEntry]


@router.get("/oncall", response_model=OnCall, summary="Who holds each role (now, or at `at`)")
async def oncall(
    request: Request,
    at: Annotated[
        str | None,
        Query(
            max_length=64,
            description="ISO 8601 (2026-12-24T03:00); no offset: the team's local time",
        ),
    ] = None,
) -> OnCall:
    ctx = get_ctx(request)
    policy = ctx.policy()
    when = schedule.aware(_instant(at), policy.roster) if at is not None else datetime.now(UTC)
    stored = await asyncio.to_thread(schedules(ctx).covering, when)
    live = rotation.with_overrides(policy.roster, [o.as_override() for o in stored])
    # The "next" columns also see overrides that start later (a swap of next week's shift).
    coming = await asyncio.to_thread(schedules(ctx).active, when)
    ahead = rotation.with_overrides(policy.roster, [o.as_override() for o in coming])
    entries: list[OnCallEntry] = []
    for role, person in rotation.on_call(live, when).items():
        entry = OnCallEntry(
            role=role,
            title=ROLE_TITLES[role],
            name=person.name,
            display_name=person.display_name,
            contact_order=list(person.contact_order),
            email=person.email,
            phone=person.phone,
            slack_user_id=person.slack_user_id,
            override=next(
                (o.id for o in reversed(stored) if o.role == role and o.person == person.name),
                None,
            ),
        )
        rot = schedule.rotation_for(policy.roster, role)
        change = rotation.next_change(ahead, role, rot, when) if rot is not None else None
        if change is not None:
            entry.next_handoff_at, entry.next_name = change
        entries.append(entry)
    zone = schedule.team_timezone(policy.roster).key
    return OnCall(at=when, team=policy.team, timezone=zone, roles=entries)


class Shift(BaseModel):
    role: Role
    title: str
    person: str
    display_name: str | None = None
    start: datetime
    end: datetime
    override: int | None = None


class ScheduleView(BaseModel):
    start: datetime
    end: datetime
    timezone: str = Field(description="The team's zone: rotations hand over in it")
    shifts: list[Shift]


async def coverage(
    ctx: ApiContext, roles: list[Role], start: datetime, end: datetime
) -> list[Segment]:
    policy = ctx.policy()
    stored = await asyncio.to_thread(schedules(ctx).active, start)
    return [
        segment
        for role in roles
        for segment in schedule.coverage(policy.roster, role, start, end, stored)
    ]


def _shift(policy: Policy, segment: Segment) -> Shift:
    person = policy.roster.person(segment.person)
    return Shift(
        role=segment.role,
        title=ROLE_TITLES[segment.role],
        person=segment.person,
        display_name=person.display_name if person else None,
        start=segment.start,
        end=segment.end,
        override=segment.override,
    )


@router.get("/schedule", response_model=ScheduleView, summary="The coming shifts, overrides in")
async def coming_shifts(
    request: Request,
    weeks: Annotated[int, Query(ge=1, le=52)] = 4,
    role: Role | None = None,
) -> ScheduleView:
    ctx = get_ctx(request)
    policy = ctx.policy()
    start = datetime.now(UTC)
    end = start + timedelta(weeks=weeks)
    roles = [role] if role is not None else [Role.PRIMARY, Role.SECONDARY]
    segments = await coverage(ctx, roles, start, end)
    return ScheduleView(
        start=start,
        end=end,
        timezone=policy.roster.primary.timezone,
        shifts=[_shift(policy, s) for s in segments],
    )


# ---- overrides and swaps --------------------------------------------------------------------


class OverrideRequest(BaseModel):
    role: Role
    person: str = Field(min_length=1, max_length=200, description="Who covers")
    start: datetime | None = Field(default=None, description="Default: now")
    end: datetime
    reason: str | None = Field(default=None, max_length=500)
    by: str = Field(min_length=1, max_length=200, description="Who makes the change")


class SwapRequest(BaseModel):
    role: Role
    week: date = Field(description="The week (its first day) whose shift is traded")
    with_: str = Field(alias="with", min_length=1, max_length=200, description="Who takes it")
    reason: str | None = Field(default=None, max_length=500)
    by: str = Field(min_length=1, max_length=200)


_CHANGE: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    403: {"model": ErrorBody, "description": "`by` is not on the roster"},
    409: {"model": ErrorBody, "description": "Overlaps an override already made"},
}


@router.get("/overrides", response_model=list[ScheduledOverride], summary="Overrides to come")
async def list_overrides(request: Request, role: Role | None = None) -> list[ScheduledOverride]:
    return await asyncio.to_thread(schedules(get_ctx(request)).active, datetime.now(UTC), role)


@router.post(
    "/overrides",
    response_model=list[ScheduledOverride],
    status_code=201,
    responses=_CHANGE,
    summary="Someone covers a role for a while",
)
async def add_override(body: OverrideRequest, request: Request) -> list[ScheduledOverride]:
    ctx = get_ctx(request)
    actor = _actor(ctx.policy(), body.by)
    try:
        return await make_override(
            ctx, body.role, body.person, body.start, body.end, actor=actor, reason=body.reason
        )
    except ScheduleError as err:
        raise _refused(err) from None


async def make_override(
    ctx: ApiContext,
    role: Role,
    person: str,
    start: datetime | None,
    end: datetime,
    *,
    actor: str,
    reason: str | None,
) -> list[ScheduledOverride]:
    """Check and store one override (the API and the Slack command); ScheduleError: refused.
    Times without an offset are the team's local time; no start: now."""
    policy = ctx.policy()
    now = datetime.now(UTC)
    begin = schedule.aware(start, policy.roster) if start is not None else now
    finish = schedule.aware(end, policy.roster)
    if finish <= begin:
        raise ScheduleError("the override must end after it starts")
    wanted = Override(role=role, person=person, start=begin, end=finish)

    def check(existing: list[ScheduledOverride]) -> list[Override]:
        return [schedule.check_override(policy.roster, wanted, now, existing)]

    return await asyncio.to_thread(schedules(ctx).add, check, actor=actor, reason=reason, now=now)


@router.post(
    "/swaps",
    response_model=list[ScheduledOverride],
    status_code=201,
    responses=_CHANGE,
    summary="Trade a week's shift with someone's next one (two overrides, made together)",
)
async def swap(body: SwapRequest, request: Request) -> list[ScheduledOverride]:
    ctx = get_ctx(request)
    policy = ctx.policy()
    actor = _actor(policy, body.by)
    now = datetime.now(UTC)

    def check(existing: list[ScheduledOverride]) -> tuple[Override, ...]:
        plan = schedule.plan_swap(policy.roster, body.role, body.week, body.with_, now, existing)
        return plan.overrides

    try:
        return await asyncio.to_thread(
            schedules(ctx).add, check, actor=actor, reason=body.reason, now=now
        )
    except ScheduleError as err:
        raise _refused(err) from None


@router.delete(
    "/overrides/{override_id}",
    response_model=list[ScheduledOverride],
    responses={
        403: {"model": ErrorBody, "description": "`by` is not on the roster"},
        404: {"model": ErrorBody, "description": "No such override"},
    },
    summary="Remove an override (both halves of a swap)",
)
async def remove_override(
    override_id: Annotated[int, FastPath(ge=1, le=2**62)],
    request: Request,
    by: Annotated[str, Query(min_length=1, max_length=200)],
) -> list[ScheduledOverride]:
    ctx = get_ctx(request)
    actor = _actor(ctx.policy(), by)
    try:
        return await asyncio.to_thread(schedules(ctx).remove, override_id, actor=actor)
    except ScheduleError as err:
        raise ApiError(404, str(err)) from None


@router.get("/overrides/audit", response_model=list[AuditEntry], summary="Schedule changes")
async def audit(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditEntry]:
    return await asyncio.to_thread(schedules(get_ctx(request)).audit, limit)


# ---- calendar feeds -------------------------------------------------------------------------


class Feed(BaseModel):
    name: str
    url: str


def _feed_names(policy: Policy) -> list[str]:
    return [f"schedules/{r.value}.ics" for r in schedule.ROTATION_ROLES] + [
        f"people/{p.name}.ics" for p in policy.roster.people
    ]


def _feed_list(ctx: ApiContext, request: Request) -> list[Feed]:
    secrets = load_secrets(ctx.data_dir)
    base = (channel_settings(request).public_url or str(request.base_url)).rstrip("/")
    return [
        Feed(name=name, url=f"{base}/{name}?token={feed_token(secrets, name)}")
        for name in _feed_names(ctx.policy())
    ]


@router.get("/calendars", response_model=list[Feed], summary="Calendar feed subscribe URLs")
async def calendars(request: Request) -> list[Feed]:
    return _feed_list(get_ctx(request), request)


@router.post(
    "/calendars/rotate", response_model=list[Feed], summary="New tokens for every calendar feed"
)
async def rotate(request: Request) -> list[Feed]:
    ctx = get_ctx(request)
    await asyncio.to_thread(rotate_calendar_secret, ctx.data_dir, ctx.policy())
    ctx.forget_secrets()
    return _feed_list(ctx, request)


def _check_feed(ctx: ApiContext, name: str, token: str) -> None:
    expected = feed_token(load_secrets(ctx.data_dir), name)
    if not token or not same_secret(token, expected):
        raise ApiError(403, "wrong or missing feed token (see `firewatch schedule --ical-urls`)")


ICS = "text/calendar; charset=utf-8"


async def _feed(ctx: ApiContext, title: str, roles: list[Role], person: str | None) -> Response:
    policy = ctx.policy()
    now = datetime.now(UTC)
    start, end = schedule.whole_shifts(
        policy.roster, now - FEED_PAST, now + timedelta(weeks=FEED_WEEKS)
    )
    segments = await coverage(ctx, roles, start, end)
    if person is not None:
        # A person's rota shifts, and any override of theirs (a fixed role's holder, such
        # as the team lead, gets no weeks-long "on call" block).
        segments = [
            s
            for s in segments
            if s.person == person and (s.role in schedule.ROTATION_ROLES or s.override)
        ]
    body = render_feed(title, policy.team, policy.roster, segments, now)
    return Response(content=body, media_type=ICS)


TokenQuery = Annotated[str, Query(max_length=200, description="The feed's token")]
_FEED_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "The feed (iCalendar)"},
    403: {"model": ErrorBody, "description": "Wrong or missing feed token"},
    404: {"model": ErrorBody, "description": "No such feed"},
}


@feeds.get(
    "/schedules/{role}.ics",
    summary="A role's calendar feed",
    response_class=Response,
    responses=_FEED_ANSWERS,
)
async def role_feed(role: Role, request: Request, token: TokenQuery = "") -> Response:
    ctx = get_ctx(request)
    _check_feed(ctx, f"schedules/{role.value}.ics", token)
    if role not in schedule.ROTATION_ROLES:
        raise ApiError(404, f"{ROLE_TITLES[role]} has no rotation, so no feed")
    return await _feed(ctx, ROLE_TITLES[role], [role], None)


@feeds.get(
    "/people/{name}.ics",
    summary="A person's calendar feed",
    response_class=Response,
    responses=_FEED_ANSWERS,
)
async def person_feed(name: str, request: Request, token: TokenQuery = "") -> Response:
    ctx = get_ctx(request)
    policy = ctx.policy()
    _check_feed(ctx, f"people/{name}.ics", token)  # first: the answer reveals no names
    person = policy.roster.person(name)
    if person is None:
        raise ApiError(404, f"{name!r} is not on the roster")
    return await _feed(ctx, person.label, list(Role), name)
