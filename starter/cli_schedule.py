"""``firewatch override``, ``swap`` and ``schedule``: the on-call schedule at run time.

Times without an offset are the team's local time (the primary rotation's zone), as people
say them: ``--from 2026-12-24T09:00``. Shifts print in that zone too; the API answers UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from starter.api_client import OverrideJson
from starter.cli import (
    _DURATION,
    _UNIT_SECONDS,
    ApiOpt,
    ByOpt,
    CliError,
    JsonOpt,
    _client,
    _echo_json,
    _echo_lines,
    _parse_time,
    _remember_api,
    _table,
    _text,
    app,
)

ROLES = ("primary", "secondary", "team_lead", "engineering_manager")
RoleOpt = Annotated[
    str, typer.Option("--role", metavar="ROLE", help="primary, secondary, team_lead, …")
]

override_app = typer.Typer(
    name="override",
    help="Someone covers a role for a while: add, list, remove, log.",
    no_args_is_help=True,
)
app.add_typer(override_app)


def _role(value: str) -> str:
    role = value.strip().lower().replace("-", "_")
    if role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}, not {value!r}")
    return role


def _when(value: str, option: str) -> str:
    """Checked here so a typo fails before the API is called; the API reads the zone."""
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"{option} must be an ISO 8601 time like 2026-12-24T09:00 (team time) or"
            f" 2026-12-24T14:00Z, not {value!r}"
        ) from None
    return value.strip()


def _duration(value: str, option: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise CliError(f"{option} must be a duration like 8h, 3d or 1w, not {value!r}")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2].lower()])


def _utc_minute(value: Any) -> str:
    at = _parse_time(value)
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def _local(value: str, zone: ZoneInfo) -> str:
    at = _parse_time(value)
    return f"{at.astimezone(zone):%a %d %b %H:%M %Z}" if at else "-"


def _override_rows(rows: list[OverrideJson], zone: ZoneInfo) -> list[str]:
    table = [
        [
            f"#{r['id']}",
            r["role"],
            r["person"],
            _local(r["start"], zone),
            _local(r["end"], zone),
            r["created_by"],
            ": ".join(filter(None, ("swap" if r.get("swap_id") else "", r.get("reason") or ""))),
        ]
        for r in rows
    ]
    return _table(("ID", "ROLE", "PERSON", "FROM", "TO", "BY", "NOTE"), table)


def _zone(client: Any) -> ZoneInfo:
    return ZoneInfo(client.schedule(weeks=1)["timezone"])


@override_app.command("add")
def override_add(
    ctx: typer.Context,
    role: RoleOpt,
    person: Annotated[str, typer.Option("--person", metavar="NAME", help="Who covers.")],
    by: ByOpt,
    start: Annotated[
        str | None, typer.Option("--from", metavar="TIME", help="Default: now.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="TIME")] = None,
    length: Annotated[
        str | None, typer.Option("--for", metavar="DURATION", help="Instead of --to: 8h, 3d.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """PERSON covers ROLE from --from (default now) to --to, or for --for."""
    if (end is None) == (length is None):
        raise CliError("give either --to TIME or --for DURATION")
    begin = _when(start, "--from") if start else None
    if end is not None:
        finish = _when(end, "--to")
    else:
        assert length is not None
        base = datetime.fromisoformat(begin) if begin else datetime.now().astimezone()
        finish = (base + _duration(length, "--for")).isoformat()
    with _client(ctx, api) as client:
        rows = client.add_override(
            _role(role),
            _text(person, "--person"),
            finish,
            _text(by, "--by"),
            start=begin,
            reason=reason,
        )
        zone = _zone(client)
    if as_json:
        _echo_json(rows)
        return
    _echo_lines(["Added:", *_override_rows(rows, zone)])


@override_app.command("list")
def override_list(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option("--role", metavar="ROLE")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Overrides now and to come."""
    with _client(ctx, api) as client:
        rows = client.overrides(_role(role) if role else None)
        zone = _zone(client)
    if as_json:
        _echo_json(rows)
        return
    _echo_lines(_override_rows(rows, zone) if rows else ["no overrides"])


@override_app.command("remove")
def override_remove(
    ctx: typer.Context,
    override_id: Annotated[int, typer.Argument(metavar="ID")],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an override (both halves of a swap): the rota holds again."""
    with _client(ctx, api) as client:
        rows = client.remove_override(override_id, _text(by, "--by"))
        zone = _zone(client)
    if as_json:
        _echo_json(rows)
        return
    _echo_lines(["Removed:", *_override_rows(rows, zone)])


@override_app.command("log")
def override_log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail: every schedule change, who made it and when, newest first."""
    with _client(ctx, api) as client:
        rows = client.schedule_audit(limit)
    if as_json:
        _echo_json(rows)
        return
    table = [
        [
            f"{_parse_time(r['at']):%Y-%m-%d %H:%M} UTC",
            r["actor"],
            r["action"],
            f"#{r['override_id']}",
            f"{r['detail'].get('person')} as {r['detail'].get('role')}"
            f" {_utc_minute(r['detail'].get('start'))} → {_utc_minute(r['detail'].get('end'))}",
        ]
        for r in rows
    ]
    _echo_lines(_table(("AT", "BY", "ACTION", "ID", "WHAT"), table) if rows else ["no changes"])


@app.command()
def swap(
    ctx: typer.Context,
    role: RoleOpt,
    week: Annotated[str, typer.Option("--week", metavar="DATE", help="e.g. 2026-12-07")],
    with_person: Annotated[str, typer.Option("--with", metavar="NAME", help="Who takes it.")],
    by: ByOpt,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Trade the shift starting in --week with NAME, who gives back their next one."""
    try:
        day = datetime.fromisoformat(week.strip()).date().isoformat()
    except ValueError:
        raise CliError(f"--week must be a date like 2026-12-07, not {week!r}") from None
    with _client(ctx, api) as client:
        rows = client.swap(
            _role(role), day, _text(with_person, "--with"), _text(by, "--by"), reason
        )
        zone = _zone(client)
    if as_json:
        _echo_json(rows)
        return
    _echo_lines(["Swapped:", *_override_rows(rows, zone)])


@app.command()
def schedule(
    ctx: typer.Context,
    weeks: Annotated[int, typer.Option("--weeks", min=1, max=52)] = 4,
    role: Annotated[str | None, typer.Option("--role", metavar="ROLE")] = None,
    ical_urls: Annotated[
        bool, typer.Option("--ical-urls", help="Print each calendar feed's subscribe URL.")
    ] = False,
    rotate_token: Annotated[
        bool,
        typer.Option("--rotate-token", help="New feed tokens: the old URLs stop working."),
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The coming shifts, overrides included (team local time)."""
    _remember_api(ctx, api)
    with _client(ctx, api) as client:
        if ical_urls or rotate_token:
            feeds = client.calendars(rotate=rotate_token)
            if as_json:
                _echo_json(feeds)
                return
            _echo_lines(_table(("FEED", "SUBSCRIBE URL"), [[f["name"], f["url"]] for f in feeds]))
            return
        data = client.schedule(weeks, _role(role) if role else None)
    if as_json:
        _echo_json(data)
        return
    zone = ZoneInfo(data["timezone"])
    rows = [
        [
            s["title"],
            s["display_name"] or s["person"],
            _local(s["start"], zone),
            _local(s["end"], zone),
            f"override #{s['override']}" if s.get("override") else "",
        ]
        for s in data["shifts"]
    ]
    title = f"Shifts for the next {weeks} week(s), {data['timezone']} time:"
    _echo_lines([title, *_table(("ROLE", "PERSON", "FROM", "TO", ""), rows)])
