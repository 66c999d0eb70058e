"""``firewatch followup``: the weekly follow-up digest as of now (what the schedule sends)."""

from __future__ import annotations

import typer

from starter.cli import ApiOpt, JsonOpt, _client, _echo_json, app


@app.command()
def followup(ctx: typer.Context, api: ApiOpt = None, as_json: JsonOpt = False) -> None:
    """Open action items by owner (overdue first), unfinished post-mortems, open P3s."""
    with _client(ctx, api) as client:
        data = client.followup()
    if as_json:
        _echo_json(data)
        return
    typer.echo(data["text"])
