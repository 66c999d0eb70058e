"""``firewatch handoff show|note|confirm`` and ``firewatch ack-test``: the weekly handoff.

``handoff show`` prints the newest handoff of each rotation (report and test-page results);
``--last`` only the most recent one. ``handoff note "..."`` leaves a note for the next
handoff (knowledge transfer). ``ack-test METHOD`` acknowledges your test page on one
contact method (sms, voice, slack, email) of the handoff that is testing you.
``test-page PERSON`` sends a test notification through each of their methods now (before
the first handoff has tested them, or after they changed a number).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from starter.api_client import ApiError
from starter.cli import (
    ApiOpt,
    ByOpt,
    CliError,
    JsonOpt,
    _client,
    _echo_json,
    _echo_lines,
    _text,
    app,
)

METHODS = ("sms", "voice", "slack", "email")
ROLES = ("primary", "secondary")

handoff_app = typer.Typer(
    name="handoff",
    help="The weekly handoff: show the report, leave a note, confirm your contact details.",
    no_args_is_help=True,
)
app.add_typer(handoff_app)

HandoffOpt = Annotated[
    str | None,
    typer.Option(
        "--handoff",
        metavar="ID",
        help="A handoff id (handoff/primary/2026-12-07T14:00Z); default: the one testing you.",
    ),
]


def _role(value: str | None) -> str | None:
    if value is None:
        return None
    role = value.strip().lower()
    if role not in ROLES:
        raise CliError(f"--role must be primary or secondary, not {value!r}")
    return role


@handoff_app.command("show")
def handoff_show(
    ctx: typer.Context,
    last: Annotated[bool, typer.Option("--last", help="Only the most recent handoff.")] = False,
    role: Annotated[
        str | None, typer.Option("--role", metavar="ROLE", help="primary or secondary")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the handoff report and its test-page results."""
    wanted = _role(role)
    found: list[dict[str, Any]] = []
    with _client(ctx, api) as client:
        if last or wanted:
            try:
                found = [client.latest_handoff(wanted)]
            except ApiError as err:
                if err.status != 404:
                    raise
        else:
            for each in ROLES:
                try:
                    found.append(client.latest_handoff(each))
                except ApiError as err:
                    if err.status != 404:
                        raise
    if as_json:
        _echo_json(found)
        return
    if not found:
        _echo_lines(["No handoff has run yet."])
        return
    lines: list[str] = []
    for i, row in enumerate(found):
        if i:
            lines.append("")
        lines += str(row.get("text", "")).rstrip("\n").split("\n")
    _echo_lines(lines)


@handoff_app.command("note")
def handoff_note(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What the next person should know.")],
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Leave a note for your next handoff (it goes in the report's knowledge transfer)."""
    with _client(ctx, api) as client:
        note = client.handoff_note(_text(by, "--by"), _text(text, "TEXT"))
    if as_json:
        _echo_json(note)
        return
    _echo_lines([f"Noted for the next handoff (#{note.get('id')}, by {note.get('by')})."])


@handoff_app.command("confirm")
def handoff_confirm(
    ctx: typer.Context,
    by: ByOpt,
    handoff: HandoffOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Confirm that your phone, email and Slack id in the report are right."""
    with _client(ctx, api) as client:
        result = client.confirm_contact(_text(by, "--by"), handoff)
    if as_json:
        _echo_json(result)
        return
    _echo_lines([f"Contact details confirmed for {result.get('handoff_id')}."])


@app.command("ack-test")
def ack_test(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(metavar="METHOD", help="sms, voice, slack or email")],
    by: ByOpt,
    handoff: HandoffOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge your handoff test page on one contact method."""
    chosen = method.strip().lower()
    if chosen not in METHODS:
        raise CliError(f"METHOD must be one of {', '.join(METHODS)}, not {method!r}")
    with _client(ctx, api) as client:
        page = client.ack_test(chosen, _text(by, "--by"), handoff)
    if as_json:
        _echo_json(page)
        return
    _echo_lines([f"Test page acknowledged: {page.get('person')} {page.get('method')}."])


_OUTCOME = {"sent": "sent", "outbox": "in the outbox only", "failed": "FAILED"}
PersonArg = Annotated[str, typer.Argument(metavar="PERSON", help="Roster name to test.")]


@app.command("test-page")
def test_page(
    ctx: typer.Context,
    person: PersonArg,
    by: ByOpt,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test notification through each of PERSON's contact methods, now."""
    name, asker = _text(person, "PERSON"), _text(by, "--by")
    with _client(ctx, api) as client:
        result = client.test_page(name, asker)
    outcomes: list[dict[str, Any]] = result.get("outcomes") or []
    if as_json:
        _echo_json(result)
    else:
        _echo_lines([f"Test page for {result.get('person')}:", *map(_outcome_line, outcomes)])
    if any(o.get("status") == "failed" for o in outcomes):
        raise typer.Exit(1)  # a method that does not reach them: scripts can tell


def _outcome_line(outcome: dict[str, Any]) -> str:
    said = _OUTCOME.get(str(outcome.get("status")), str(outcome.get("status")))
    detail = f": {outcome['detail']}" if outcome.get("detail") else ""
    return f"  {outcome.get('method')}: {said}{detail}"
