"""``firewatch migrate``: bring Firewatch's database to the newest schema, once, and say so.

Every process (worker, API, ``make up``) already migrates when it opens the database, safely
when several start at once (``storage.migrate``). This is the one-shot form for a deploy
step, e.g. before rolling out new workers on PostgreSQL: it applies the migrations to
``FIREWATCH_DATABASE_URL`` (else the SQLite file in the data dir) and prints the revision
before and after. Already at head: nothing to do, exit 0. Like ``export``, it talks to the
database itself, not to the API.
"""

from __future__ import annotations

from starter.cli import CliError, JsonOpt, _echo_json, _echo_lines, _settings, app


@app.command("migrate")
def migrate_command(as_json: JsonOpt = False) -> None:
    """Apply the database migrations (FIREWATCH_DATABASE_URL, else the data dir's SQLite
    file) and print the schema revision before and after."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.database import Database, database_url
    from storage.migrate import current_revision, head_revision, upgrade

    settings = _settings()
    try:
        database = Database(database_url(settings.data_dir))
    except (ValueError, ImportError) as exc:  # an unknown dialect or driver
        raise CliError(f"invalid FIREWATCH_DATABASE_URL: {exc}", exit_code=2) from exc
    try:
        with database.read() as conn:
            before = current_revision(conn)
        changed = upgrade(database)
        with database.read() as conn:
            after = current_revision(conn)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot migrate {database.describe()}: {exc}", exit_code=1) from exc
    finally:
        database.close()
    head = head_revision()
    if as_json:
        _echo_json(
            {
                "database": database.describe(),
                "before": before,
                "after": after,
                "head": head,
                "migrated": changed,
            }
        )
        return
    if changed:
        summary = f"migrated: {before or '(empty)'} -> {after} (head)"
    else:
        summary = f"already at head: {after}"
    _echo_lines([f"database: {database.describe()}", summary])
