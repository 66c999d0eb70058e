"""One database per process and URL: the engine, transactions, migrations at opening."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL, make_url

from storage import dialects

DB_FILE = "firewatch.db"


def timestamp(at: datetime) -> str:
    """How every table stores a time: UTC ISO 8601 with microseconds (sorts as text)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def sqlite_url(data_dir: Path) -> str:
    """The embedded default: ``firewatch.db`` in the data dir."""
    return f"sqlite:///{(data_dir / DB_FILE).resolve()}"


def database_url(data_dir: Path) -> str:
    """Firewatch's database: ``FIREWATCH_DATABASE_URL`` (a SQLAlchemy URL such as
    ``postgresql+psycopg://user:pass@host/firewatch``, or a plain libpq
    ``postgresql://user:pass@host/firewatch``), else the data dir's SQLite file."""
    from activities.settings import get_settings  # read in one place, with every setting

    return get_settings().database_url or sqlite_url(data_dir)


# A URL without a driver (as libpq and most tools write it) gets psycopg 3, the driver
# Firewatch depends on; SQLAlchemy's own default for ``postgresql://`` is psycopg2.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def normalise_url(url: str | URL) -> URL:
    """``url`` as SQLAlchemy opens it: ``postgresql://`` and ``postgres://`` become
    ``postgresql+psycopg://``; anything else (an explicit driver included) is kept."""
    parsed = make_url(url)
    driver = DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


class Database:
    """An engine on one database. ``Database.open`` shares one per URL and migrates it.

    Writes go through ``write()``: one transaction, serialised against other writers
    holding the same lock name (see ``storage.dialects``); reads through ``read()``.
    """

    def __init__(self, url: str | URL) -> None:
        self.url = normalise_url(url)
        path = self.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, **dialects.engine_options(self.url))
        dialects.configure(self.engine)
        self.writers = dialects.WriterGate(self.dialect)  # see WriterGate
        # Close the pooled connections once nothing refers to this database any more.
        weakref.finalize(self, self.engine.dispose)

    _open: ClassVar[weakref.WeakValueDictionary[str, Database]] = weakref.WeakValueDictionary()
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def open(cls, url: str | URL) -> Database:
        """The process's database for ``url``, migrated to the newest schema."""
        from storage.migrate import upgrade

        key = normalise_url(url).render_as_string(hide_password=False)
        with cls._open_lock:
            found = cls._open.get(key)
            if found is None:
                found = cls(url)
                upgrade(found)
                cls._open[key] = found
            return found

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def sqlite_path(self) -> Path | None:
        """The file, for a file-backed SQLite database."""
        if self.dialect != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return Path(str(self.url.database))

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, lock: str | None = None, *, urgent: bool = False) -> Iterator[Connection]:
        """One write transaction, committed at the end (rolled back on an exception).

        With ``lock``, serialised against every other ``write`` holding the same name, in
        any process: what a read-then-write such as the INC allocation needs. ``urgent``:
        a page waits for this write; on SQLite it goes before the others queued in this
        process (``dialects.WriterGate``).
        """
        with self.writers.turn(urgent=urgent), self.engine.connect() as conn:
            conn.execution_options(**{dialects.WRITE_OPTION: True})
            with conn.begin():
                if lock is not None:
                    dialects.lock(conn, lock)
                yield conn

    def close(self) -> None:
        self.engine.dispose()
