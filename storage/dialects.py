"""Everything that differs between SQLite and PostgreSQL, in one place.

* Engine set-up. SQLite: WAL (readers such as the API never block the worker), a 30 s busy
  timeout, foreign keys on, and transactions begun by us (``BEGIN`` / ``BEGIN IMMEDIATE``)
  instead of by the sqlite3 module, which begins them late and commits DDL on its own.
* Write transactions (``Database.write``). SQLite has one writer at a time: every write
  transaction is ``BEGIN IMMEDIATE``, which takes the write lock up front, so writers queue
  (busy timeout) instead of one failing on a lock upgrade, and a named lock needs nothing
  more. PostgreSQL: a named lock is ``pg_advisory_xact_lock``, held until the transaction
  ends; other writes run concurrently under row locks.
* Writers in one process. SQLite: they queue on a lock of ours (``WriterGate``) before
  ``BEGIN IMMEDIATE``, the paging path's writes first. SQLite's own busy handler polls
  with sleeps of up to 100 ms, so with dozens of threads writing (a burst of pages) the
  write lock sat free while its waiters slept: one-row writes from 64 threads had p99
  632 ms and max 1.2 s, against 54 and 55 ms under the gate. PostgreSQL: no gate.
* ``INSERT ... ON CONFLICT``: both speak it, through their dialect's ``insert``; its
  rowcount (1 inserted, 0 skipped) is kept on PostgreSQL too (``preserve_rowcount``).
* URLs: ``postgresql://`` (libpq style) means psycopg 3 (``storage.database.normalise_url``).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.schema import Table

SQLITE_BUSY_TIMEOUT_S = 30
SUPPORTED = ("sqlite", "postgresql")

# Connection execution option: this connection's transactions write.
WRITE_OPTION = "firewatch_write"


def engine_options(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # Every activity thread may need a connection at once; SQLite itself serialises writes.
        return {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S},
            "pool_size": 8,
            # Statements carry secrets (tokens, keys): errors must not print their values.
            "hide_parameters": True,
            "max_overflow": 40,
        }
    if url.get_backend_name() == "postgresql":
        return {
            "pool_size": 8,
            # Statements carry secrets (tokens, keys): errors must not print their values.
            "hide_parameters": True,
            "max_overflow": 24,
            # No pre-ping: it is a round trip on every checkout, and it doubled the time a
            # page spent in the database. A connection PostgreSQL dropped fails one call,
            # which Temporal retries; recycling keeps idle ones from going stale.
            "pool_recycle": 300,
            # psycopg 3 resets cursor.rowcount when SQLAlchemy closes an INSERT's cursor
            # (sqlalchemy#10696): keep it, so ``insert_ignoring_conflict`` tells 1 from 0.
            "execution_options": {"preserve_rowcount": True},
        }
    raise ValueError(
        f"unsupported database {url.get_backend_name()!r} (Firewatch runs on {SUPPORTED})"
    )


def configure(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN/COMMIT by sqlite3
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the write lock at BEGIN: a deferred transaction that reads and then
        # writes fails at once (SQLITE_BUSY) if another writer committed in between.
        write = bool(conn.get_execution_options().get(WRITE_OPTION))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# Urgent turns handed out in a row while an ordinary writer waits, before that one goes.
URGENT_STREAK = 8


class WriterGate:
    """SQLite: one writing transaction at a time in this process, in arrival order, with a
    lane for the paging path.

    First come, first served, and handed straight to the next waiter: Python's own locks
    are not fair, and under one a burst of 64 writers still had a p99 of 247 ms. Writes a
    page waits for (``urgent``: the delivery ledger's claims and outcomes, the notification
    records, the INC number) go before the others (tickets, incident records, Slack message
    state): in a burst of openings the first pages otherwise queued behind every opening's
    ticket write. The lane is bounded: after ``URGENT_STREAK`` urgent turns in a row while
    an ordinary writer waits, that writer goes next, so a sustained stream of pages slows the
    tickets and records down but cannot starve them into "database is locked".
    Re-entrant, so a thread that (wrongly) nests writes waits for SQLite's busy timeout and
    fails, as it did before, instead of deadlocking here. Other processes (the API, another
    worker) still meet at SQLite's lock and its busy timeout.
    """

    def __init__(self, dialect: str, timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
        self._on = dialect == "sqlite"
        self._timeout_s = timeout_s
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._urgent: deque[tuple[int, threading.Event]] = deque()
        self._waiting: deque[tuple[int, threading.Event]] = deque()
        self._streak = 0  # urgent turns handed out in a row while ordinary writers waited

    @property
    def queued(self) -> int:
        """Writers waiting for their turn."""
        with self._mutex:
            return len(self._urgent) + len(self._waiting)

    @contextmanager
    def turn(self, *, urgent: bool = False) -> Iterator[None]:
        self._enter(urgent)
        try:
            yield
        finally:
            self._exit()

    def _enter(self, urgent: bool) -> None:
        if not self._on:
            return
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Event()
            queue = self._urgent if urgent else self._waiting
            queue.append((me, turn))
        if turn.wait(self._timeout_s):
            return  # the releaser made us the owner
        with self._mutex:
            if turn.is_set():  # handed over as the wait ended
                return
            queue.remove((me, turn))
        # The error SQLite's own busy timeout gives, so callers handle one kind of "locked".
        message = f"database is locked: no write turn within {self._timeout_s:g} s"
        raise OperationalError(None, None, sqlite3.OperationalError(message))

    def _exit(self) -> None:
        if not self._on:
            return
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            queue = self._next_queue()
            if queue:
                self._owner, turn = queue.popleft()
                self._depth = 1
                turn.set()
            else:
                self._owner = None

    def _next_queue(self) -> deque[tuple[int, threading.Event]]:
        """Urgent first, but never more than ``URGENT_STREAK`` in a row past a waiting writer."""
        if not self._waiting:
            self._streak = 0
            return self._urgent
        if self._urgent and self._streak < URGENT_STREAK:
            self._streak += 1
            return self._urgent
        self._streak = 0
        return self._waiting


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, persistent and a no-op once set.

    On a fresh file, switching needs an exclusive lock and SQLite answers "database is
    locked" at once, without the busy handler, while another connection holds any lock:
    processes starting together (worker, API, ``make up``) would fail 1 time in 3 (measured
    with four). So the switch is retried until the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def lock(conn: Connection, name: str) -> None:
    """Serialise this transaction against every other one holding ``name``."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(lock_key(name))))
    # SQLite: BEGIN IMMEDIATE (see configure) already holds the database's write lock.


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _insert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_conflict(
    conn: Connection, table: Table, values: Mapping[str, Any], key: Sequence[str]
) -> Insert:
    """INSERT that does nothing when a row with the same ``key`` exists (rowcount 0)."""
    return _insert(conn, table).values(dict(values)).on_conflict_do_nothing(index_elements=key)


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    key: Sequence[str],
    update: Mapping[str, Any],
    *,
    where: ColumnElement[bool] | Callable[[Any], ColumnElement[bool]] | None = None,
) -> Insert:
    """INSERT, or UPDATE ``update`` (``excluded`` holds the new row) when ``key`` exists.

    ``update`` values and ``where`` may be callables taking the ``excluded`` row.
    """
    stmt = _insert(conn, table).values(dict(values))
    excluded = stmt.excluded
    set_ = {name: value(excluded) if callable(value) else value for name, value in update.items()}
    condition = where(excluded) if callable(where) else where
    return stmt.on_conflict_do_update(index_elements=key, set_=set_, where=condition)
