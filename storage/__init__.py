"""Firewatch's own state: one database (SQLite in the data dir, or PostgreSQL), one schema.

``schema`` defines the tables, ``migrations`` changes them (Alembic, applied when a
process opens the database), ``database`` holds the engine and the transactions,
``dialects`` everything SQLite- or PostgreSQL-specific. ``store`` (incident numbers and
the outbox) and ``ledger`` (delivery records) are what the rest of Firewatch calls.
"""

from storage.database import Database, database_url, sqlite_url

__all__ = ["Database", "database_url", "sqlite_url"]
