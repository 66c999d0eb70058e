"""``firewatch heartbeats``: heartbeat monitors with their state; ``--show-urls`` adds where
each job pings and its token (``GET /heartbeats``, behind the API token).

Registered on the main app in ``starter.cli``; the shared helpers (client, table, times) are
imported from there when the command runs, so neither module imports the other at load.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

heartbeats_app = typer.Typer(
    name="heartbeats",
    invoke_without_command=True,
    help="Heartbeat monitors (dead-man's switches): state, and where each job pings.",
)

ShowUrlsOpt = Annotated[
    bool, typer.Option("--show-urls", help="Print each ping URL and its token (unmasked).")
]
ApiOpt = Annotated[
    str | None,
    typer.Option("--api", metavar="URL", help="API base URL (env FIREWATCH_API_URL)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]

_STATUS_TEXT = {
    "waiting": "waiting (never pinged)",
    "up": "up",
    "late": "late (in grace)",
    "missed": "MISSED",
    "unknown": "unknown (no worker answered)",
}


@heartbeats_app.callback()
def heartbeats(
    ctx: typer.Context,
    show_urls: ShowUrlsOpt = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Heartbeat monitors: last ping, due by, status (--show-urls: ping URL and token).

    Without a subcommand: the list.
    """
    if ctx.invoked_subcommand is None:
        _list(ctx, show_urls, api, as_json)


@heartbeats_app.command("list")
def heartbeats_list(
    ctx: typer.Context,
    show_urls: ShowUrlsOpt = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Heartbeat monitors: last ping, due by, status (--show-urls: ping URL and token)."""
    _list(ctx, show_urls, api, as_json)


def _list(ctx: typer.Context, show_urls: bool, api: str | None, as_json: bool) -> None:
    from starter import cli

    with cli._client(ctx, api) as client:
        params = {"show_urls": "true" if show_urls else "false"}
        data: Any = client._request("GET", "/heartbeats", params=params)
    if as_json:
        cli._echo_json(data)
        return
    rows: list[dict[str, Any]] = (
        list(data.get("heartbeats") or []) if isinstance(data, dict) else []
    )
    if not rows:
        typer.echo("no heartbeat monitors in the policy (see README: Heartbeats)")
        return
    now = cli._now()

    def when(value: Any) -> str:
        at = cli._parse_time(value)
        return f"{cli._clock(at, now)} ({cli._relative(at, now)})" if at else "-"

    table = [
        [
            str(r.get("name")),
            str(r.get("service")),
            str(r.get("severity")),
            f"{r.get('period')} + {r.get('grace')}",
            _STATUS_TEXT.get(str(r.get("status")), str(r.get("status"))),
            when(r.get("last_ping_at")),
            when(r.get("due_by")) if r.get("status") != "missed" else "-",
        ]
        for r in rows
    ]
    headers = ("NAME", "SERVICE", "SEV", "PERIOD + GRACE", "STATUS", "LAST PING", "DUE BY")
    lines = cli._table(headers, table)
    for r in rows:
        if r.get("status") == "missed" and r.get("incident_id"):
            lines.append(
                f"{r.get('name')}: {r['incident_id']} is open (firewatch show {r['incident_id']})"
            )
        elif r.get("status") == "missed" and r.get("incident_workflow_id"):
            lines.append(f"{r.get('name')}: incident opening ({r['incident_workflow_id']})")
    if show_urls:
        lines.append("")
        for r in rows:
            lines += [
                f"{r.get('name')}",
                f"  url    POST {r.get('url')}",
                f"  token  {r.get('token') or '-'}",
                f"  curl -fsS -X POST -H 'Authorization: Bearer {r.get('token') or '…'}'"
                f" {r.get('url')}",
            ]
    cli._echo_lines(lines)
