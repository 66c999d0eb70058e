"""``firewatch``: the on-call command line. It talks only to Firewatch's HTTP API.

API URL: ``--api`` (before or after the command), else ``FIREWATCH_API_URL``, else
http://127.0.0.1:8000. Token: ``FIREWATCH_API_TOKEN``, else the API token in Firewatch's
database (``FIREWATCH_DATABASE_URL``, else the SQLite file in ``$FIREWATCH_DATA_DIR``, ``.data``
by default), else ``api_token`` in the data dir's ``secrets.json`` of an install that has not
started since secrets moved into the database. ``--by`` defaults
to ``FIREWATCH_USER``. Times are shown in UTC, like the incident timeline and tickets.
The variables are read by ``activities.settings`` (imported when a command runs, so ``--help``
stays quick), except ``FIREWATCH_USER``, which the option parser reads for ``--by`` (it is
declared in the settings model too, for the documentation).

Exit codes: 0 ok, 1 the API refused or failed, 2 bad usage, 3 the API is unreachable.
Every failure is one line on stderr: ``firewatch: <reason>``.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # imported when a command runs: pydantic costs --help 0.1 s
    from activities.settings import Settings

try:  # typer >= 0.2x vendors click as typer._click; older ones use click itself
    from typer import _click as _click
except ImportError:  # pragma: no cover
    import click as _click  # type: ignore[no-redef]

from starter.api_client import (
    DEFAULT_API_URL,
    DEFAULT_TIMEOUT,
    ApiError,
    ApiUnreachable,
    ChangeLinkJson,
    FirewatchClient,
    IncidentJson,
)
from starter.cli_heartbeats import heartbeats_app
from starter.cli_maintenance import maintenance_app

# Mirrors domain.policy.Severity / domain.incident.Status (a test keeps them in sync);
# kept literal so the CLI starts without importing pydantic models.
SEVERITIES = ("P0", "P1", "P2", "P3")
STATUSES = ("Triggered", "Investigating", "Mitigating", "Resolved")
UPDATE_STATUSES = ("Investigating", "Mitigating")
SORTS = ("-opened", "opened", "severity", "status")  # incident list orders, default first
_INCIDENT_ID = re.compile(r"^INC-\d{4}-\d{2}-\d{2}-\d{3,}$")

EXIT_API = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

SUMMARY_WIDTH = 60  # summary column in tables


class CliError(Exception):
    """A mistake caught before (or instead of) calling the API."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Control characters (ANSI escapes from an alert's text, say) never reach the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(text: str) -> str:
    return _CONTROL.sub("?", text)


def _fail(message: str, exit_code: int) -> NoReturn:
    typer.echo(f"firewatch: {_safe(' '.join(message.split()))}", err=True)
    sys.exit(exit_code)


class _OneLineErrors(TyperGroup):
    """Turns usage errors and API failures into one ``firewatch: ...`` line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click.exceptions.ClickException as err:
            ctx = getattr(err, "ctx", None)
            if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
                # Bare `firewatch`: the help (rich help is already printed by now).
                if text := err.format_message().strip():
                    typer.echo(text)
                sys.exit(0)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(err.format_message().rstrip(".") + hint, err.exit_code)
        except typer.Abort:
            _fail("aborted", 1)
        except CliError as err:
            _fail(str(err), err.exit_code)
        except ApiUnreachable as err:
            _fail(str(err), EXIT_UNREACHABLE)
        except ApiError as err:
            _fail(_explain(err), EXIT_API)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="firewatch",
    cls=_OneLineErrors,
    help="Firewatch on-call and incident response, from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# ---- configuration ----------------------------------------------------------------------


def _settings() -> Settings:
    from activities.settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as exc:
        raise CliError(f"invalid setting: {exc}") from exc


def _secrets_path() -> Path:
    return _settings().data_dir / "secrets.json"


def load_token() -> str | None:
    """``FIREWATCH_API_TOKEN``, else the database's, else ``api_token`` from a secrets.json
    not imported yet. A database that cannot be reached (e.g. PostgreSQL from a laptop) is
    skipped: set ``FIREWATCH_API_TOKEN`` there."""
    settings = _settings()
    secret = settings.api_token
    token = secret.get_secret_value().strip() if secret else ""
    if token:
        return token
    from sqlalchemy.exc import SQLAlchemyError

    from starter.secrets import stored_api_token

    try:
        stored = stored_api_token(settings.data_dir)
    except (SQLAlchemyError, ImportError, ValueError):
        stored = None
    if stored:
        return stored
    path = _secrets_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"cannot read the API token: {path} is not valid JSON") from exc
    value = data.get("api_token") if isinstance(data, dict) else None
    if value is not None and not isinstance(value, str):
        raise CliError(f"cannot read the API token: api_token in {path} is not a string")
    return (value or "").strip() or None


def _explain(err: ApiError) -> str:
    if err.status == 401:
        return (
            f"{err}: set FIREWATCH_API_TOKEN or check the API token"
            " (`firewatch token` prints the one in Firewatch's database)"
        )
    return str(err)


def _client(ctx: typer.Context, api: str | None) -> FirewatchClient:
    root = ctx.find_root().obj or {}
    url = api or root.get("api") or _settings().api_url
    token = load_token()
    try:
        return FirewatchClient(url, token, timeout=DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


# ---- input checks -----------------------------------------------------------------------


def _severity(value: str) -> str:
    severity = value.strip().upper()
    if severity not in SEVERITIES:
        raise CliError(f"severity must be one of {', '.join(SEVERITIES)}, not {value!r}")
    return severity


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    for option in allowed:
        if option.lower() == value.strip().lower():
            return option
    raise CliError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _incident_id(value: str) -> str:
    incident_id = value.strip().upper()
    if not _INCIDENT_ID.match(incident_id):
        raise CliError(f"{value!r} is not an incident id (INC-YYYY-MM-DD-###)")
    return incident_id


def _text(value: str, option: str) -> str:
    text = value.strip()
    if not text:
        raise CliError(f"{option} must not be empty")
    return text


# ---- formatting ---------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)  # tests pin this


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def _relative(at: datetime, now: datetime) -> str:
    return f"in {_span(at - now)}" if at >= now else f"{_span(now - at)} ago"


def _clock(at: datetime, now: datetime) -> str:
    """Wall time in UTC; the date only when it is not today."""
    if at.date() == now.date():
        return f"{at:%H:%M:%S} UTC"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def _moment(value: Any, now: datetime) -> str | None:
    at = _parse_time(value)
    return f"{_clock(at, now)} ({_relative(at, now)})" if at else None


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]


def _echo_lines(lines: Sequence[str]) -> None:
    """Plain output: every line goes through here."""
    for line in lines:
        typer.echo(_safe(line))


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _next_step(state: IncidentJson, now: datetime) -> str | None:
    label, at = state.get("next_step_label"), _parse_time(state.get("next_step_at"))
    if not label and not at:
        return None
    when = f" at {_clock(at, now)} ({_relative(at, now)})" if at else ""
    return f"{label or 'next step'}{when}"


def _state_line(state: IncidentJson) -> str:
    assignee = state.get("assignee")
    return " · ".join(
        [
            str(state.get("incident_id") or state.get("workflow_id") or "?"),
            str(state.get("severity") or "?"),
            str(state.get("status") or "?"),
            f"assignee {assignee}" if assignee else "unassigned",
        ]
    )


def _echo_change(verb: str, state: IncidentJson) -> None:
    """What an action did: one line, plus the next escalation while the incident is open."""
    lines = [f"{verb} {_state_line(state)}"]
    nxt = _next_step(state, _now())
    if nxt and state.get("status") != "Resolved":
        lines.append(f"Next step: {nxt}")
    _echo_lines(lines)


def _done(state: IncidentJson, as_json: bool, verb: str) -> None:
    if as_json:
        _echo_json(state)
    else:
        _echo_change(verb, state)


def _show_lines(state: IncidentJson, now: datetime) -> list[str]:
    def row(label: str, value: str) -> str:
        return f"{label:<17}{value}"

    lines = [
        "  ".join(
            str(state.get(k) or "?") for k in ("incident_id", "severity", "status", "service")
        ),
        row("summary", " ".join(str(state.get("summary") or "").split())),
        row("assignee", state.get("assignee") or "unassigned"),
        row("opened", _moment(state.get("opened_at"), now) or "?"),
    ]
    acked = _moment(state.get("acknowledged_at"), now)
    by = state.get("acknowledged_by")
    lines.append(row("acknowledged", f"{acked or ''} by {by}".strip() if by else acked or "no"))
    if state.get("status") != "Resolved":
        lines.append(row("next escalation", _next_step(state, now) or "none"))
    if state.get("responders"):
        lines.append(row("responders", ", ".join(state["responders"])))
    if (state.get("alert_count") or 0) > 1:
        lines.append(row("alerts", str(state["alert_count"])))
    resolved = _moment(state.get("resolved_at"), now)
    if resolved:
        who = state.get("resolved_by")
        fp = " (false positive)" if state.get("false_positive") else ""
        lines.append(row("resolved", f"{resolved}{' by ' + who if who else ''}{fp}"))
        lines.append(row("root cause", " ".join(str(state.get("root_cause") or "").split())))
        lines.append(row("fix", " ".join(str(state.get("fix") or "").split())))
    runs = [r for r in state.get("runbook_runs") or [] if r.get("finished_at")]
    if runs:
        lines += ["", *_run_lines(runs[-1])]
    for proposal in state.get("mitigations") or []:
        lines.append(row("mitigation", _proposal_line(proposal, str(state.get("incident_id")))))
    lines += ["", *_timeline_lines(state.get("timeline") or [])]
    return lines


def _timeline_lines(timeline: list[dict[str, Any]]) -> list[str]:
    if not timeline:
        return ["Timeline: empty"]
    lines: list[str] = []
    day = None
    for entry in timeline:
        at = _parse_time(entry.get("at"))
        if at is not None and at.date() != day:
            heading = f"Timeline, {at:%Y-%m-%d} (UTC)" if day is None else f"-- {at:%Y-%m-%d} --"
            lines.append(heading)
            day = at.date()
        text = str(entry.get("text") or "").rstrip()
        by = entry.get("by")
        first, *rest = (text + (f" ({by})" if by else "")).splitlines() or [""]
        lines.append(f"{at:%H:%M:%S}  {first}" if at else f"{'?':<8}  {first}")
        lines += [f"{'':10}{more}" for more in rest]  # multi-line updates stay indented
    return lines


# ---- shared options ---------------------------------------------------------------------

ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        metavar="URL",
        help=f"API base URL (env FIREWATCH_API_URL; default {DEFAULT_API_URL}).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
ByOpt = Annotated[
    str, typer.Option("--by", metavar="NAME", envvar="FIREWATCH_USER", help="Who is acting.")
]
IncidentArg = Annotated[str, typer.Argument(metavar="INCIDENT", help="INC-YYYY-MM-DD-###")]


@app.callback()
def _root(
    ctx: typer.Context,
    api: ApiOpt = None,
) -> None:
    ctx.obj = {"api": api}


# ---- incidents --------------------------------------------------------------------------


@app.command()
def trigger(
    ctx: typer.Context,
    service: Annotated[str, typer.Option(help="Affected service.")],
    severity: Annotated[str, typer.Option(metavar="P0-P3", help="P0 (critical) to P3 (low).")],
    summary: Annotated[str, typer.Option(help="What is wrong, in one line.")],
    dedup_key: Annotated[
        str | None, typer.Option(help="Alerts with the same key join one incident.")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open an incident (or join the open one with the same dedup key); prints its id."""
    body = (
        _text(service, "--service"),
        _severity(severity),
        _text(summary, "--summary"),
        _text(dedup_key, "--dedup-key") if dedup_key is not None else None,
    )
    with _client(ctx, api) as client:
        state = client.trigger(*body)
    if as_json:
        _echo_json(state)
    elif state.get("incident_id"):
        _echo_lines([str(state["incident_id"])])
        _say_if_joined(state, body[1])
    else:
        # 202: durably recorded, but no worker has opened it (so there is no id to print).
        typer.echo(
            _safe(
                f"firewatch: recorded as {state.get('workflow_id')}, but no worker has opened"
                " it yet: is the worker running?"
            ),
            err=True,
        )


def _say_if_joined(state: IncidentJson, severity: str) -> None:
    """On stderr (stdout stays the id, for scripts): the alert joined an open incident,
    which keeps the severity and service it opened with."""
    count = state.get("alert_count")
    if not isinstance(count, int) or count < 2:
        return
    incident_id = state.get("incident_id")
    change = (
        f" (to make it {severity}: firewatch severity {incident_id} {severity} --by NAME)"
        if severity != state.get("severity")
        else ""
    )
    typer.echo(
        _safe(
            f"firewatch: joined the open incident {incident_id} ({state.get('severity')} on"
            f" {state.get('service')}, {count} alerts): it keeps its severity and service" + change
        ),
        err=True,
    )


@app.command()
def incidents(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="/".join(STATUSES))] = None,
    severity: Annotated[str | None, typer.Option(metavar="P0-P3")] = None,
    service: Annotated[str | None, typer.Option()] = None,
    sort: Annotated[
        str,
        typer.Option(
            metavar="|".join(SORTS),
            help="-opened: newest first (default); opened: oldest first; severity: P0 first; "
            "status: Triggered first (these two then newest first)",
        ),
    ] = "-opened",
    limit: Annotated[
        int | None, typer.Option(min=1, max=1000, help="At most N (the API's default: 100).")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List incidents, newest first."""
    filters = {
        "status": _choice(status, STATUSES, "status") if status else None,
        "severity": _severity(severity) if severity else None,
        "service": service.strip() if service else None,
    }
    order = _choice(sort, SORTS, "sort")
    with _client(ctx, api) as client:
        rows = client.list_incidents(
            **filters,
            sort=None if order == SORTS[0] else order,  # the default is not sent
            limit=limit,
        )
    if as_json:
        _echo_json({"incidents": rows})
        return
    if not rows:
        typer.echo("no incidents match" if any(filters.values()) else "no incidents")
        return
    table = []
    for r in rows:
        summary = str(r.get("summary") or "-")
        opened = _parse_time(r.get("opened_at"))
        table.append(
            [
                str(r.get("incident_id") or r.get("workflow_id")),
                str(r.get("severity") or "?"),
                str(r.get("status") or "?"),
                str(r.get("service") or "?"),
                str(r.get("assignee") or "-"),
                f"{opened:%Y-%m-%d %H:%M}" if opened else "?",
                _short(summary, SUMMARY_WIDTH),
            ]
        )
    _echo_lines(
        _table(("ID", "SEV", "STATUS", "SERVICE", "ASSIGNEE", "OPENED (UTC)", "SUMMARY"), table)
    )


@app.command()
def show(
    ctx: typer.Context,
    incident: IncidentArg,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An incident's state and timeline."""
    incident_id = _incident_id(incident)
    with _client(ctx, api) as client:
        state = client.get_incident(incident_id)
    if as_json:
        _echo_json(state)
    else:
        _echo_lines(_show_lines(state, _now()))


@app.command()
def ack(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge: you own it; the escalation ladder stops."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.acknowledge(incident_id, by)
    _done(state, as_json, "Acknowledged")


@app.command()
def update(
    ctx: typer.Context,
    incident: IncidentArg,
    message: Annotated[str, typer.Option(help="Progress: what has been done.")],
    by: ByOpt,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="Investigating or Mitigating.")
    ] = None,
    next_steps: Annotated[
        str | None, typer.Option("--next", metavar="TEXT", help="Next steps: what is next.")
    ] = None,
    eta: Annotated[str | None, typer.Option(metavar="TEXT", help="ETA, if known.")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Post a status update (the seed's Update template: progress, next steps, ETA)."""
    incident_id = _incident_id(incident)
    args = (
        _text(by, "--by"),
        _text(message, "--message"),
        _choice(status, UPDATE_STATUSES, "status") if status is not None else None,
    )
    with _client(ctx, api) as client:
        state = client.post_update(
            incident_id,
            *args,
            next_steps=_text(next_steps, "--next") if next_steps is not None else None,
            eta=_text(eta, "--eta") if eta is not None else None,
        )
    _done(state, as_json, "Posted update to")


@app.command()
def severity(
    ctx: typer.Context,
    incident: IncidentArg,
    level: Annotated[str, typer.Argument(metavar="SEVERITY", help="P0-P3")],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the severity (re-plans escalation from now)."""
    incident_id, new, by = _incident_id(incident), _severity(level), _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.change_severity(incident_id, by, new)
    _done(state, as_json, "Changed severity of")


@app.command()
def escalate(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    reason: Annotated[str | None, typer.Option(help="Why, for the timeline.")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Page the next escalation level now."""
    incident_id, who = _incident_id(incident), _text(by, "--by")
    why = (reason or "").strip() or None
    with _client(ctx, api) as client:
        state = client.escalate(incident_id, who, why)
    _done(state, as_json, "Escalated")


@app.command()
def responder(
    ctx: typer.Context,
    incident: IncidentArg,
    person: Annotated[str, typer.Argument(help="Roster name of the person to add.")],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a responder to an incident."""
    incident_id, who = _incident_id(incident), _text(person, "PERSON")
    actor = _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.add_responder(incident_id, who, actor)
    _done(state, as_json, f"Added {who} to")


@app.command()
def resolve(
    ctx: typer.Context,
    incident: IncidentArg,
    root_cause: Annotated[str, typer.Option(help="What caused it.")],
    fix: Annotated[str, typer.Option(help="What fixed it.")],
    by: ByOpt,
    false_positive: Annotated[
        bool, typer.Option("--false-positive", help="Nothing was actually wrong.")
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve an incident."""
    incident_id = _incident_id(incident)
    args = (_text(by, "--by"), _text(root_cause, "--root-cause"), _text(fix, "--fix"))
    with _client(ctx, api) as client:
        state = client.resolve(incident_id, *args, false_positive=false_positive)
    _done(state, as_json, "Resolved")


@app.command()
def runbook(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    step: Annotated[
        str | None, typer.Option("--step", metavar="NAME", help="Run only this check.")
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", metavar="SECONDS", help="Wait this long for the results.")
    ] = 30.0,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the service's runbook checks again and show the results."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.run_diagnostics(incident_id, by, step)
        number = state.get("runbook_runs_started")
        deadline = time.monotonic() + max(wait, 0.0)
        run = _run_of(state, number)
        while (run is None or not run.get("finished_at")) and time.monotonic() < deadline:
            time.sleep(0.5)
            state = client.get_incident(incident_id)
            run = _run_of(state, number)
    if as_json:
        _echo_json(state)
        return
    if run is None or not run.get("finished_at"):
        _echo_lines(
            [
                f"Diagnostics #{number} started for {incident_id}; results follow in "
                f"#incidents and `firewatch show {incident_id}`."
            ]
        )
        return
    _echo_lines(_run_lines(run))


def _run_of(state: IncidentJson, number: Any) -> dict[str, Any] | None:
    runs = state.get("runbook_runs") or []
    return next((r for r in runs if r.get("number") == number), None)


_OUTCOME_MARKS = {"ok": "ok    ", "failed": "FAILED", "error": "ERROR ", "manual": "manual"}


def _run_lines(run: dict[str, Any]) -> list[str]:
    lines = [f"Diagnostics #{run.get('number')} ({run.get('reason')}):"]
    for result in run.get("results") or []:
        mark = _OUTCOME_MARKS.get(str(result.get("outcome")), str(result.get("outcome")))
        lines.append(f"  {mark} {result.get('name')}: {_safe(str(result.get('summary') or ''))}")
    return lines


@app.command()
def mitigate(
    ctx: typer.Context,
    incident: IncidentArg,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="rollback, restart, ...")],
    by: ByOpt,
    reason: Annotated[str | None, typer.Option("--reason", help="Why this action.")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose one of the service's mitigations; it runs once approved (or at once, low risk)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.propose_mitigation(incident_id, _text(action, "ACTION"), by, reason)
    _decided(state, as_json, incident_id)


def _decide(
    ctx: typer.Context,
    incident: str,
    number: int,
    by: str,
    approve: bool,
    reason: str | None,
    api: str | None,
    as_json: bool,
) -> None:
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        state = client.decide_mitigation(incident_id, number, by, approve, reason)
    _decided(state, as_json, incident_id, number)


def _decided(
    state: IncidentJson, as_json: bool, incident_id: str, number: int | None = None
) -> None:
    if as_json:
        _echo_json(state)
        return
    proposals = state.get("mitigations") or []
    proposal = (
        next((m for m in proposals if m.get("number") == number), None)
        if number is not None
        else (proposals[-1] if proposals else None)
    )
    lines = [_state_line(state)]
    if proposal is not None:
        lines.insert(0, _proposal_line(proposal, incident_id))
    _echo_lines(lines)


def _proposal_line(proposal: dict[str, Any], incident_id: str) -> str:
    number, action, status = proposal.get("number"), proposal.get("action"), proposal.get("status")
    line = f"#{number} {action}: {status}"
    if status == "proposed":
        hint = "another person must approve" if proposal.get("risk") == "high" else "needs approval"
        line += f" ({hint}: firewatch approve {incident_id} {number} --by NAME)"
    outcome = proposal.get("outcome") or {}
    if outcome.get("summary"):
        line += f" - {_safe(str(outcome['summary']))}"
    return line


NumberArg = Annotated[int, typer.Argument(metavar="NUMBER", min=1, help="The proposal's number.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why.")]


@app.command()
def approve(
    ctx: typer.Context,
    incident: IncidentArg,
    number: NumberArg,
    by: ByOpt,
    reason: ReasonOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a proposed mitigation; it runs at once."""
    _decide(ctx, incident, number, by, True, reason, api, as_json)


@app.command()
def decline(
    ctx: typer.Context,
    incident: IncidentArg,
    number: NumberArg,
    by: ByOpt,
    reason: ReasonOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decline a proposed mitigation."""
    _decide(ctx, incident, number, by, False, reason, api, as_json)


@app.command("postmortem-held")
def postmortem_held(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    notes: Annotated[str, typer.Option(help="Outcome of the review.")] = "",
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the post-mortem review took place (stops the reminders)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        result = client.postmortem_held(incident_id, by, notes.strip())
    if as_json:
        _echo_json(result)
    else:
        held_by = result.get("held_by") or by
        _echo_lines([f"Post-mortem review of {incident_id} marked held by {held_by}"])


# ---- people, notifications, integrations ------------------------------------------------


@app.command()
def token() -> None:
    """Print the API token this CLI uses (FIREWATCH_API_TOKEN, else the one `make up`
    generated into Firewatch's database), for curl: "Authorization: Bearer $(firewatch token)"."""
    found = load_token()
    if found is None:
        raise CliError(
            "no API token: start Firewatch once (`make up`) in this data dir"
            f" ({_settings().data_dir}), or set FIREWATCH_API_TOKEN"
        )
    typer.echo(found)


@app.command()
def oncall(
    ctx: typer.Context,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help="Any time, e.g. 2026-12-24T03:00 (team local time)."
        ),
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who holds each escalation level, now or --at any time (overrides included)."""
    if at is not None:
        try:
            datetime.fromisoformat(at.strip())
        except ValueError:
            raise CliError(
                f"--at must be an ISO 8601 time like 2026-12-24T03:00, not {at!r}"
            ) from None
    with _client(ctx, api) as client:
        data = client.oncall(at.strip() if at else None)
    if as_json:
        _echo_json(data)
        return
    when = _parse_time(data.get("at"))
    rows = []
    for role in data.get("roles") or []:
        name, display = role.get("name", "?"), role.get("display_name")
        who = f"{display} ({name})" if display and display != name else name
        if role.get("override"):
            who += f"  [override #{role['override']}]"
        rows.append([str(role.get("title") or role.get("role") or "?"), who])
    zone = data.get("timezone")
    local = ""
    if when and isinstance(zone, str):
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            local = f" ({when.astimezone(ZoneInfo(zone)):%a %-d %b %H:%M %Z}, the team's time)"
    typer.echo(f"On call at {when:%Y-%m-%d %H:%M:%S} UTC{local}" if when else "On call now")
    _echo_lines(_table(("LEVEL", "PERSON"), rows) if rows else ["nobody is on call"])


@app.command()
def outbox(
    ctx: typer.Context,
    incident: Annotated[
        str | None, typer.Option("--incident", metavar="INCIDENT", help="Only this incident.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N, the newest.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Print each message's text.")] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Notifications Firewatch sent (pages, Slack posts, emails), oldest first."""
    incident_id = _incident_id(incident) if incident else None
    with _client(ctx, api) as client:
        rows = client.outbox(incident_id, limit)
    if as_json:
        _echo_json({"notifications": rows})
        return
    if not rows:
        typer.echo("no notifications")
        return
    headers = ["TIME (UTC)", *([] if incident_id else ["INCIDENT"]), "KIND", "TO", "SUBJECT"]
    table = []
    for r in rows:
        at = _parse_time(r.get("recorded_at") or r.get("scheduled_at"))
        channel, recipient = r.get("channel"), str(r.get("recipient") or "?")
        to = f"{recipient} ({channel})" if channel and channel != recipient else recipient
        status = r.get("status")
        subject = _short(str(r.get("subject") or ""), SUMMARY_WIDTH)
        table.append(
            [
                f"{at:%Y-%m-%d %H:%M:%S}" if at else "?",
                *([] if incident_id else [str(r.get("incident_id") or "?")]),
                str(r.get("kind") or "?"),
                to,
                subject + (f" [{status}]" if status and status != "sent" else ""),
            ]
        )
    lines = _table(headers, table)
    if not full:
        _echo_lines(lines)
        return
    _echo_lines(lines[:1])
    for line, r in zip(lines[1:], rows, strict=True):
        texts = [f"    {text}" for text in str(r.get("text") or "").splitlines()]
        _echo_lines([line, *texts, ""])


# ---- change feed ------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


TeamZone = Callable[[], tzinfo]


def _team_zone(ctx: typer.Context, api: str | None) -> TeamZone:
    """The team's zone, asked of the API only if a time was typed without an offset: such a
    time is the team's local time in every command (overrides, reviews, maintenance,
    changes), as people say it."""

    def zone() -> tzinfo:
        with _client(ctx, api) as client:
            name = client.oncall().get("timezone")
        return ZoneInfo(str(name)) if name else UTC

    return zone


def _in_team_time(at: datetime, zone: TeamZone) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=zone())).astimezone(UTC)


def _time_option(
    value: str, option: str, now: datetime, zone: TeamZone, *, durations: bool
) -> datetime:
    """An ISO 8601 time (no offset: the team's local time), or with ``durations`` also 30m,
    2h, 7d: that long before ``now``."""
    if durations and (match := _DURATION.match(value)):
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2].lower()])
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        what = "a duration like 30m, 2h or 7d, or " if durations else ""
        raise CliError(
            f"{option} must be {what}an ISO 8601 time like 2026-11-28T09:00 (team time) or"
            f" 2026-11-28T14:00Z, not {value!r}"
        ) from None
    return _in_team_time(at, zone)


@app.command()
def changes(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="2h|ISO",
            help="Only changes since then: 30m, 2h, 7d ago, or an ISO time (team time if no"
            " offset).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=1000, help="At most N (the API's default: 100).")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recent deployments and config changes, newest first."""
    filters = {
        "service": _text(service, "--service") if service is not None else None,
        "since": _time_option(
            since, "--since", _now(), _team_zone(ctx, api), durations=True
        ).isoformat()
        if since is not None
        else None,
    }
    with _client(ctx, api) as client:
        rows = client.changes(service=filters["service"], since=filters["since"], limit=limit)
    if as_json:
        _echo_json({"changes": rows})
        return
    if not rows:
        typer.echo("no changes match" if any(filters.values()) else "no changes")
        return
    table = []
    for r in rows:
        at = _parse_time(r.get("at"))
        table.append(
            [
                f"{at:%Y-%m-%d %H:%M:%S}" if at else "?",
                str(r.get("service") or "?"),
                str(r.get("who") or "-"),
                _short(str(r.get("summary") or "-"), SUMMARY_WIDTH),
            ]
        )
    _echo_lines(_table(("WHEN (UTC)", "SERVICE", "WHO", "SUMMARY"), table))


# `firewatch change add`: record a change by hand (CI/CD posts to the API instead).
change_app = typer.Typer(
    name="change",
    no_args_is_help=True,
    help="Record a deployment or config change by hand (see `firewatch changes`).",
)
app.add_typer(change_app)


@change_app.command("add")
def change_add(
    ctx: typer.Context,
    service: Annotated[str, typer.Option("--service", metavar="SERVICE", help="What changed.")],
    summary: Annotated[str, typer.Option("--summary", help="The change, in one line.")],
    who: Annotated[
        str,
        typer.Option("--who", metavar="NAME", envvar="FIREWATCH_USER", help="Who made it."),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="ISO", help="When it happened (default: now; team time if no offset)."
        ),
    ] = None,
    link: Annotated[
        list[str] | None, typer.Option("--link", metavar="URL", help="A link (repeatable).")
    ] = None,
    change_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Your key for it: a repeat is recorded once."),
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a change: a deploy, a config change, a feature flag flipped."""
    fields = (_text(service, "--service"), _text(summary, "--summary"), _text(who, "--who"))
    zone = _team_zone(ctx, api)
    when = _time_option(at, "--at", _now(), zone, durations=False).isoformat() if at else None
    key = _text(change_id, "--id") if change_id is not None else None
    links: list[ChangeLinkJson] = [{"href": _text(href, "--link")} for href in link or []]
    with _client(ctx, api) as client:
        row, new = client.add_change(
            *fields, at=when, links=links or None, change_id=key, source="cli"
        )
    if as_json:
        _echo_json(row)
        return
    stored_at = _parse_time(row.get("at"))
    happened = f"{stored_at:%Y-%m-%d %H:%M:%S} UTC" if stored_at else "?"
    verb = "Recorded" if new else "Already recorded"
    _echo_lines(
        [
            f"{verb} change {row.get('change_id')} for {row.get('service')} at {happened}: "
            f"{row.get('summary')}"
        ]
    )


# `firewatch integrations` lists; `list`, `add` and `remove` are its subcommands.
integrations_app = typer.Typer(
    name="integrations",
    invoke_without_command=True,
    help="Alert sources: where each posts and its key; add one for a service; remove one.",
)
app.add_typer(integrations_app)
app.add_typer(heartbeats_app)  # `firewatch heartbeats` (starter/cli_heartbeats.py)
app.add_typer(maintenance_app)  # `firewatch maintenance` (starter/cli_maintenance.py)

INTEGRATION_KINDS = ("pagerduty", "alertmanager", "grafana", "generic")
ShowSecretsOpt = Annotated[bool, typer.Option("--show-secrets", help="Print the keys unmasked.")]


def _remember_api(ctx: typer.Context, api: str | None) -> None:
    # `firewatch integrations --api URL add ...`: the group's --api serves its subcommands.
    root = ctx.find_root().obj
    if api and isinstance(root, dict):
        root["api"] = api


@integrations_app.callback()
def integrations(
    ctx: typer.Context,
    show_secrets: ShowSecretsOpt = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Alert sources: where each one posts, and its key (masked unless --show-secrets).

    Without a subcommand: the list. Subcommands: list, add, remove.
    """
    _remember_api(ctx, api)
    if ctx.invoked_subcommand is None:
        _list_integrations(ctx, show_secrets, api, as_json)


@integrations_app.command("list")
def integrations_list(
    ctx: typer.Context,
    show_secrets: ShowSecretsOpt = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Alert sources: where each one posts, and its key (masked unless --show-secrets)."""
    _list_integrations(ctx, show_secrets, api, as_json)


def _list_integrations(
    ctx: typer.Context, show_secrets: bool, api: str | None, as_json: bool
) -> None:
    with _client(ctx, api) as client:
        rows = client.integrations(show_secrets)
    if as_json:
        _echo_json({"integrations": rows})
        return
    if not rows:
        typer.echo("no integrations configured")
        return
    fields: tuple[str, ...] = ("name", "kind", "service", "url", "key")
    if any("origin" in r for r in rows):
        fields += ("origin",)
    raw: list[dict[str, Any]] = [dict(r) for r in rows]
    table = [[str(r.get(f) or "-") for f in fields] for r in raw]
    _echo_lines(_table([f.upper() for f in fields], table))


@integrations_app.command("add")
def integrations_add(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Option("--kind", metavar="KIND", help=f"One of {', '.join(INTEGRATION_KINDS)}."),
    ],
    service: Annotated[
        str,
        typer.Option("--service", metavar="SERVICE", help="The service of the incidents it opens."),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Default: <kind>-<service>."),
    ] = None,
    default_severity: Annotated[
        str | None,
        typer.Option("--default-severity", metavar="P0-P3", help="When an alert carries none."),
    ] = None,
    no_auto_resolve: Annotated[
        bool,
        typer.Option("--no-auto-resolve", help="Resolve events do not resolve incidents."),
    ] = False,
    ignore_acks: Annotated[
        bool,
        typer.Option(
            "--ignore-acks",
            help="pagerduty: acknowledge events are accepted and ignored.",
        ),
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an alert source for a service: prints where it posts and its new key."""
    body = {
        "kind": _choice(kind, INTEGRATION_KINDS, "--kind"),
        "service": _text(service, "--service"),
        "name": _text(name, "--name") if name is not None else None,
        "default_severity": _severity(default_severity) if default_severity else None,
    }
    if ignore_acks and body["kind"] != "pagerduty":
        raise CliError("--ignore-acks is for --kind pagerduty only")
    with _client(ctx, api) as client:
        row = client.add_integration(
            str(body["kind"]),
            str(body["service"]),
            body["name"],
            default_severity=body["default_severity"],
            auto_resolve=False if no_auto_resolve else None,
            acknowledge_events=False if ignore_acks else None,
        )
    if as_json:
        _echo_json(row)
        return
    raw: dict[str, Any] = dict(row)
    lines = [
        f"Added {raw.get('name')} ({raw.get('kind')}) for service {raw.get('service')}",
        f"  url          {raw.get('url') or '-'}",
        f"  auth         {raw.get('auth') or '-'}",
        f"  key          {raw.get('key') or '-'}",
    ]
    if raw.get("hmac_secret"):
        lines.append(f"  hmac secret  {raw['hmac_secret']}")
    _echo_lines(lines)


@integrations_app.command("remove")
def integrations_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="An added integration.")],
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an added alert source: its key stops working at once."""
    with _client(ctx, api) as client:
        row = client.remove_integration(_text(name, "NAME"))
    if as_json:
        _echo_json(row)
        return
    _echo_lines([f"Removed {row.get('name')}: its key no longer works"])


# Commands kept in modules of their own register themselves on ``app`` when imported.
from starter import (  # noqa: E402
    cli_export,  # export, document
    cli_followup,  # followup
    cli_handoff,  # handoff, ack-test
    cli_migrate,  # migrate
    cli_postmortem,  # postmortem, action, actions
    cli_report,  # report
    cli_schedule,  # override, swap, schedule
    cli_ticket,  # ticket
    cli_whatif,  # whatif
)

__all__ = [
    "app",
    "cli_export",
    "cli_followup",
    "cli_handoff",
    "cli_migrate",
    "cli_postmortem",
    "cli_report",
    "cli_schedule",
    "cli_ticket",
    "cli_whatif",
    "main",
]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
