"""``firewatch postmortem``, ``postmortems``, ``action`` and ``actions``: the follow-through.

    firewatch postmortem show INC-…
    firewatch postmortem reschedule INC-… --at 2026-12-01T15:00Z --by erin [--reason "..."]
    firewatch postmortem meeting INC-… --by erin --went-well "..." --improve "..." [--timeline ...]
    firewatch postmortem complete INC-… --by erin
    firewatch postmortems [--open]
    firewatch action add INC-… --owner dave --due 2026-12-10 --kind monitoring "Alert on pool"
    firewatch action edit INC-… 1 --due 2026-12-17 --by erin
    firewatch action close INC-… 1 --evidence https://grafana/d/pool --by dave
    firewatch action verify INC-… 1 --by erin
    firewatch actions [--owner dave] [--overdue]

Registered on the main app in ``starter.cli`` (imported at its bottom, as ``cli_schedule``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import typer

from starter.cli import (
    ApiOpt,
    ByOpt,
    CliError,
    IncidentArg,
    JsonOpt,
    TeamZone,
    _client,
    _echo_json,
    _echo_lines,
    _in_team_time,
    _incident_id,
    _parse_time,
    _short,
    _table,
    _team_zone,
    _text,
    app,
)

postmortem_app = typer.Typer(
    name="postmortem",
    no_args_is_help=True,
    help="One post-mortem: show it, move its review, record the meeting, complete it.",
)
action_app = typer.Typer(
    name="action",
    no_args_is_help=True,
    help="Post-mortem action items: add, edit, close with evidence, verify.",
)
app.add_typer(postmortem_app)
app.add_typer(action_app)

KINDS = "prevention, monitoring, runbook, process or training"
NumberArg = Annotated[int, typer.Argument(metavar="ITEM", help="The item's number (1, 2, ...)")]
OptionalText = Annotated[str | None, typer.Option()]


def _due(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise CliError(f"--due must be a date like 2026-12-10, not {value!r}") from None


def _at(value: str, zone: TeamZone) -> str:
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"--at must be an ISO 8601 time like 2026-12-01T10:00 (team time) or"
            f" 2026-12-01T15:00Z, not {value!r}"
        ) from None
    return _in_team_time(at, zone).isoformat()


def _stamp(value: Any) -> str:
    at = _parse_time(value)
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def _item_line(item: dict[str, Any]) -> str:
    return (
        f"#{item.get('number')} {item.get('title')} · {item.get('owner')} · due {item.get('due')}"
        f" · {item.get('kind')} · {item.get('status')}"
    )


# ---- post-mortems ----------------------------------------------------------------------


@postmortem_app.command("show")
def postmortem_show(
    ctx: typer.Context, incident: IncidentArg, api: ApiOpt = None, as_json: JsonOpt = False
) -> None:
    """The post-mortem's stage, review, notes and action items."""
    incident_id = _incident_id(incident)
    with _client(ctx, api) as client:
        pm = client.postmortem(incident_id)
    if as_json:
        _echo_json(pm)
        return
    lines = [
        f"Post-mortem {incident_id}: {pm.get('status')}",
        f"  review       {_stamp(pm.get('review_at'))}"
        + (
            f", held {_stamp(pm.get('held_at'))} ({pm.get('held_by')})" if pm.get("held_at") else ""
        ),
        f"  document     {pm.get('document_path') or '-'}",
    ]
    meeting = pm.get("meeting") or {}
    for key in ("what_went_well", "areas_for_improvement"):
        lines.append(f"  {key.replace('_', ' '):<22} {meeting.get(key) or '-'}")
    lines += [f"  {_item_line(i)}" for i in pm.get("items") or []]
    _echo_lines(lines)


@postmortem_app.command("reschedule")
def postmortem_reschedule(
    ctx: typer.Context,
    incident: IncidentArg,
    at: Annotated[
        str, typer.Option("--at", metavar="TIME", help="ISO 8601 (no offset: team time).")
    ],
    by: ByOpt,
    reason: Annotated[str, typer.Option(help="Why it moved (told to the attendees).")] = "",
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the review meeting; the attendees are told."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        pm = client.postmortem_reschedule(
            incident_id, by, _at(at, _team_zone(ctx, api)), reason.strip()
        )
    if as_json:
        _echo_json(pm)
        return
    _echo_lines([f"Review of {incident_id} moved to {_stamp(pm.get('review_at'))}; attendees told"])


@postmortem_app.command("meeting")
def postmortem_meeting(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    timeline: Annotated[str | None, typer.Option("--timeline", help="Timeline review.")] = None,
    root_cause: Annotated[
        str | None, typer.Option("--root-cause", help="Root cause analysis.")
    ] = None,
    assignment: Annotated[
        str | None, typer.Option("--assignment", help="Action item assignment.")
    ] = None,
    process: Annotated[str | None, typer.Option("--process", help="Process improvements.")] = None,
    went_well: Annotated[
        str | None, typer.Option("--went-well", help="Lessons learned: what went well.")
    ] = None,
    improve: Annotated[
        str | None, typer.Option("--improve", help="Lessons learned: areas for improvement.")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the review's notes (marks it held the first time; later calls amend)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    notes = {
        "timeline_review": timeline,
        "root_cause_analysis": root_cause,
        "action_item_assignment": assignment,
        "process_improvements": process,
        "what_went_well": went_well,
        "areas_for_improvement": improve,
    }
    with _client(ctx, api) as client:
        pm = client.postmortem_meeting(incident_id, by, **notes)
    if as_json:
        _echo_json(pm)
        return
    _echo_lines([f"Meeting notes recorded for {incident_id}: {pm.get('status')}"])


@postmortem_app.command("complete")
def postmortem_complete(
    ctx: typer.Context,
    incident: IncidentArg,
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Complete the post-mortem (refused while anything is open)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        pm = client.postmortem_complete(incident_id, by)
    if as_json:
        _echo_json(pm)
        return
    _echo_lines([f"Post-mortem {incident_id} complete"])


@app.command("postmortems")
def postmortems(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only those not complete.")] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Post-mortems across incidents, newest review first."""
    with _client(ctx, api) as client:
        rows = client.postmortems(open_only=open_only)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        _echo_lines(["No post-mortems" + (" open" if open_only else "")])
        return
    table = [
        [
            str(r.get("incident_id")),
            str(r.get("severity")),
            str(r.get("stage")),
            _stamp(r.get("review_at")),
            f"{r.get('items_open')}/{r.get('items_total')}",
            _short(str(r.get("summary") or ""), 40),
        ]
        for r in rows
    ]
    _echo_lines(_table(["INCIDENT", "SEV", "STAGE", "REVIEW", "OPEN", "SUMMARY"], table))


# ---- action items ----------------------------------------------------------------------


@action_app.command("add")
def action_add(
    ctx: typer.Context,
    incident: IncidentArg,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="What is to be done.")],
    owner: Annotated[str, typer.Option("--owner", metavar="NAME", help="A roster name.")],
    due: Annotated[str, typer.Option("--due", metavar="DATE", help="YYYY-MM-DD (team time).")],
    kind: Annotated[str, typer.Option("--kind", metavar="KIND", help=KINDS)],
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="NAME", envvar="FIREWATCH_USER", help="Default: the owner."),
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an action item; its owner is told."""
    incident_id = _incident_id(incident)
    with _client(ctx, api) as client:
        item = client.add_action(
            incident_id,
            title=_text(title, "TITLE"),
            owner=_text(owner, "--owner"),
            due=_due(due) or "",
            kind=_text(kind, "--kind"),
            by=by.strip() if by else None,
        )
    if as_json:
        _echo_json(item)
        return
    _echo_lines([f"Added to {incident_id}: {_item_line(item)}"])


@action_app.command("edit")
def action_edit(
    ctx: typer.Context,
    incident: IncidentArg,
    number: NumberArg,
    by: ByOpt,
    title: Annotated[str | None, typer.Option("--title")] = None,
    owner: Annotated[str | None, typer.Option("--owner", metavar="NAME")] = None,
    due: Annotated[str | None, typer.Option("--due", metavar="DATE")] = None,
    kind: Annotated[str | None, typer.Option("--kind", metavar="KIND", help=KINDS)] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an item's title, owner, due date or kind (a new owner is told)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    if all(v is None for v in (title, owner, due, kind)):
        raise CliError("nothing to change: give --title, --owner, --due or --kind")
    with _client(ctx, api) as client:
        item = client.edit_action(
            incident_id, number, by, title=title, owner=owner, due=_due(due), kind=kind
        )
    if as_json:
        _echo_json(item)
        return
    _echo_lines([f"Changed in {incident_id}: {_item_line(item)}"])


@action_app.command("close")
def action_close(
    ctx: typer.Context,
    incident: IncidentArg,
    number: NumberArg,
    evidence: Annotated[
        str, typer.Option("--evidence", metavar="LINK_OR_TEXT", help="What shows it is done.")
    ],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close an item with evidence; it then awaits verification."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        item = client.close_action(incident_id, number, by, _text(evidence, "--evidence"))
    if as_json:
        _echo_json(item)
        return
    _echo_lines([f"Closed in {incident_id}: {_item_line(item)}"])


@action_app.command("verify")
def action_verify(
    ctx: typer.Context,
    incident: IncidentArg,
    number: NumberArg,
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a closed item (anyone but its owner)."""
    incident_id, by = _incident_id(incident), _text(by, "--by")
    with _client(ctx, api) as client:
        item = client.verify_action(incident_id, number, by)
    if as_json:
        _echo_json(item)
        return
    _echo_lines([f"Verified in {incident_id}: {_item_line(item)}"])


@app.command("actions")
def actions(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option("--owner", metavar="NAME")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open items past due.")] = False,
    incident: Annotated[str | None, typer.Option("--incident", metavar="INCIDENT")] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Action items across incidents, soonest due first."""
    incident_id = _incident_id(incident) if incident else None
    with _client(ctx, api) as client:
        rows = client.actions(
            owner=owner.strip() if owner else None, overdue=overdue, incident_id=incident_id
        )
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        _echo_lines(["No action items" + (" overdue" if overdue else "")])
        return
    table = [
        [
            f"{r.get('incident_id')} #{r.get('number')}",
            str(r.get("owner")),
            str(r.get("due")),
            str(r.get("kind")),
            "overdue" if r.get("overdue") else str(r.get("status")),
            _short(str(r.get("title") or ""), 48),
        ]
        for r in rows
    ]
    _echo_lines(_table(["ITEM", "OWNER", "DUE", "KIND", "STATUS", "TITLE"], table))
