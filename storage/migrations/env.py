"""Alembic's environment: runs the migrations on the connection we are given.

``storage.migrate.upgrade`` passes a connection already inside the migration lock's
transaction. From the command line (``alembic upgrade head``, ``alembic check``) this
opens the configured database (``-x url=...``, else ``FIREWATCH_DATABASE_URL``, else the
data dir's SQLite file) and takes the same lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # ALTERs that SQLite lacks become copy-and-move
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def command_line_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    from activities.config import data_dir
    from storage.database import database_url

    return database_url(data_dir())


def main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        run(given)
        return
    if context.is_offline_mode():  # alembic upgrade --sql: print the SQL
        context.configure(url=command_line_url(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from storage.database import Database
    from storage.migrate import MIGRATION_LOCK

    db = Database(command_line_url())
    try:
        with db.write(lock=MIGRATION_LOCK) as connection:
            run(connection)
    finally:
        db.close()


main()
