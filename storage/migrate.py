"""Schema migrations (Alembic), applied when a process opens the database.

Safe when the worker, the API and ``make up`` start at once: a process that finds the
database at head goes on without waiting; otherwise it takes the migration lock (SQLite:
the write lock, ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), looks again, and
upgrades inside that one transaction (both databases have transactional DDL), so the
others wait for it and then find the database at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.database import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = "firewatch:migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our scripts; ``connection`` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> bool:
    """Bring ``db`` to the newest schema. True if this call changed it."""
    head = head_revision()
    with db.read() as conn:
        if current_revision(conn) == head:
            return False
    with db.write(lock=MIGRATION_LOCK) as conn:
        if current_revision(conn) == head:  # another process migrated while we waited
            return False
        command.upgrade(alembic_config(conn), "head")
    return True
