"""``firewatch maintenance``: put a service in maintenance (now or later), list windows, end one.

    firewatch maintenance start --service api --for 2h --reason "DB upgrade" --by alice
    firewatch maintenance start --service api --from 2026-11-28T22:00Z --to 2026-11-29T01:00Z ...
    firewatch maintenance list
    firewatch maintenance end 3 --by alice

During a window the service's alerts are recorded but page nobody (``POST /maintenance``).
Registered on the main app in ``starter.cli``; the shared helpers (client, table, times) are
imported from there when a command runs, so neither module imports the other at load.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from starter.cli import TeamZone

maintenance_app = typer.Typer(
    name="maintenance",
    no_args_is_help=True,
    help="Maintenance windows: a service's alerts are recorded but page nobody meanwhile.",
)

ApiOpt = Annotated[
    str | None,
    typer.Option("--api", metavar="URL", help="API base URL (env FIREWATCH_API_URL)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
ByOpt = Annotated[
    str, typer.Option("--by", metavar="NAME", envvar="FIREWATCH_USER", help="Who is acting.")
]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(value: str, option: str) -> timedelta | None:
    from starter.cli import CliError

    match = _DURATION.match(value)
    if match is None:
        return None
    delta = timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2].lower()])
    if delta <= timedelta(0):
        raise CliError(f"{option} must be longer than zero, not {value!r}")
    return delta


def _moment(value: str, option: str, now: datetime, zone: TeamZone) -> datetime:
    """An ISO 8601 time (no offset: the team's local time), or a duration from now (30m)."""
    from starter.cli import CliError, _in_team_time

    delta = _duration(value, option)
    if delta is not None:
        return now + delta
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"{option} must be an ISO 8601 time like 2026-11-28T22:00 (team time) or"
            f" 2026-11-29T03:00Z, or a duration like 30m, not {value!r}"
        ) from None
    return _in_team_time(at, zone)


def _window_times(
    start: str | None, to: str | None, length: str | None, now: datetime, zone: TeamZone
) -> tuple[datetime, datetime]:
    from starter.cli import CliError

    if (to is None) == (length is None):
        raise CliError("give the window's end: --to TIME or --for DURATION (one of them)")
    starts_at = _moment(start, "--from", now, zone) if start is not None else now
    if length is not None:
        delta = _duration(length, "--for")
        if delta is None:
            raise CliError(f"--for must be a duration like 30m, 2h or 1d, not {length!r}")
        return starts_at, starts_at + delta
    assert to is not None
    return starts_at, _moment(to, "--to", now, zone)


def _line(row: dict[str, Any], now: datetime) -> list[str]:
    from starter.cli import _parse_time, _short

    def stamp(key: str) -> str:
        at = _parse_time(row.get(key))
        return f"{at:%Y-%m-%d %H:%M}" if at else "-"

    ended = row.get("ended_at")
    until = stamp("ended_at") + f" (ended by {row.get('ended_by')})" if ended else stamp("ends_at")
    return [
        str(row.get("id")),
        str(row.get("service") or "?"),
        str(row.get("phase") or "?"),
        stamp("starts_at"),
        until,
        _short(str(row.get("reason") or "-"), 40),
        str(row.get("created_by") or "-"),
    ]


_HEADERS = ("ID", "SERVICE", "PHASE", "FROM (UTC)", "UNTIL (UTC)", "REASON", "BY")


@maintenance_app.command("start")
def maintenance_start(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", metavar="SERVICE", help="The service.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in #incidents).")],
    by: ByOpt,
    length: Annotated[
        str | None, typer.Option("--for", metavar="DURATION", help="How long: 30m, 2h, 1d.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TIME",
            help="When it starts: ISO time (team time if no offset) or 30m.",
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="TIME", help="When it ends (instead of --for).")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a service in maintenance now (or from --from): its alerts page nobody meanwhile."""
    from starter.cli import _client, _echo_json, _echo_lines, _now, _team_zone, _text

    now = _now()
    starts_at, ends_at = _window_times(start, to, length, now, _team_zone(ctx, api))
    with _client(ctx, api) as client:
        row = client.start_maintenance(
            _text(service, "--service"),
            ends_at.isoformat(),
            _text(reason, "--reason"),
            _text(by, "--by"),
            starts_at=starts_at.isoformat() if start is not None else None,
        )
    if as_json:
        _echo_json(row)
        return
    raw: dict[str, Any] = dict(row)
    line = _line(raw, now)
    verb = "is in maintenance" if raw.get("phase") == "active" else "goes into maintenance"
    _echo_lines(
        [
            f"Window {raw.get('id')}: {raw.get('service')} {verb} from {line[3]} until "
            f"{line[4]} UTC ({raw.get('reason')})",
            "Its alerts are recorded but page nobody meanwhile; "
            f"end it early: firewatch maintenance end {raw.get('id')} --by NAME",
        ]
    )


@maintenance_app.command("list")
def maintenance_list(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
    include_past: Annotated[
        bool, typer.Option("--all", help="Include windows that are over.")
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Maintenance windows on or to come (--all: also those over), soonest first."""
    from starter.cli import _client, _echo_json, _echo_lines, _now, _table, _text

    with _client(ctx, api) as client:
        rows = client.maintenance(
            service=_text(service, "--service") if service is not None else None,
            include_past=include_past,
        )
    if as_json:
        _echo_json({"windows": rows})
        return
    if not rows:
        typer.echo("no maintenance windows")
        return
    now = _now()
    _echo_lines(_table(_HEADERS, [_line(dict(r), now) for r in rows]))


@maintenance_app.command("end")
def maintenance_end(
    ctx: typer.Context,
    window_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The window's id.")],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a window early (or cancel one to come): incidents it held start paging now."""
    from starter.cli import _client, _echo_json, _echo_lines, _text

    with _client(ctx, api) as client:
        row = client.end_maintenance(window_id, _text(by, "--by"))
    if as_json:
        _echo_json(row)
        return
    _echo_lines(
        [
            f"Ended window {row.get('id')} ({row.get('service')}, {row.get('reason')}): "
            "its alerts page as usual again"
        ]
    )
