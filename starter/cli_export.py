"""``firewatch export [--to DIR]``: the documents and incident records, as files; and
``firewatch document INC-… [--postmortem]``: one of them, through the API.

Unlike the other commands this one reads Firewatch's database itself (``FIREWATCH_DATABASE_URL``,
else the SQLite file in the data dir), so run it where the worker's database is reachable.
``DIR`` defaults to the data dir. See ``starter.export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from starter.cli import (
    ApiOpt,
    CliError,
    IncidentArg,
    JsonOpt,
    _client,
    _echo_json,
    _incident_id,
    _safe,
    _settings,
    app,
)


@app.command("export")
def export_command(
    to: Annotated[
        Path | None,
        typer.Option("--to", metavar="DIR", help="Where to write them; default: the data dir"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write every ticket and post-mortem (tickets/, postmortems/) and the incident records
    (incident_records.json) from the database into DIR."""
    from sqlalchemy.exc import SQLAlchemyError

    from starter.export import export
    from starter.secrets import database_exists
    from storage.database import Database, database_url
    from storage.migrate import upgrade

    settings = _settings()
    target = to if to is not None else settings.data_dir
    url = database_url(settings.data_dir)
    if not database_exists(url):
        raise CliError(f"no database in {settings.data_dir}: run `make up` once", exit_code=1)
    database = Database(url)
    try:
        upgrade(database)  # an export from a newer checkout than the worker's: same schema
        done = export(database, target)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot read the database {database.describe()}: {exc}", 1) from exc
    except OSError as exc:
        raise CliError(f"cannot write to {target}: {exc.strerror or exc}", 1) from exc
    finally:
        database.close()
    if as_json:
        _echo_json(
            {
                "to": str(done.to),
                "tickets": done.tickets,
                "postmortems": done.postmortems,
                "records": done.records,
            }
        )
        return
    typer.echo(
        f"Exported {done.tickets} tickets, {done.postmortems} post-mortems and"
        f" {done.records} incident records to {done.to}"
    )


@app.command("document")
def document_command(
    ctx: typer.Context,
    incident: IncidentArg,
    postmortem: Annotated[
        bool, typer.Option("--postmortem", help="The post-mortem draft instead of the ticket")
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print an incident's ticket (or post-mortem draft) as Markdown, from the database."""
    incident_id = _incident_id(incident)
    with _client(ctx, api) as client:
        data = client.document(incident_id, "postmortem" if postmortem else "ticket")
    if as_json:
        _echo_json(data)
        return
    typer.echo(_safe(str(data.get("markdown", ""))), nl=False)
