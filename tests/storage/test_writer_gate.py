"""SQLite writers in one process take turns in arrival order, the paging path's first
(``storage.dialects.WriterGate``).

SQLite's own busy handler polls with sleeps of up to 100 ms: with dozens of threads writing,
the lock sat free while its waiters slept, and a one-row write took up to 1.2 s."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage.database import Database, sqlite_url
from storage.dialects import URGENT_STREAK, WriterGate


def wait_until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def commit_order(db: Database, arrivals: list[str]) -> list[str]:
    """Queue one writer per name, in this order, behind a held turn ("page..." ones
    urgent); the order their rows were committed in."""
    with db.write() as conn:
        conn.execute(text("CREATE TABLE arrivals (n TEXT)"))
    threads = []
    with db.write():  # holds the turn while the others queue, one after another
        for n, name in enumerate(arrivals):

            def insert(name: str = name) -> None:
                with db.write(urgent=name.startswith("page")) as conn:
                    conn.execute(text("INSERT INTO arrivals VALUES (:n)"), {"n": name})

            threads.append(threading.Thread(target=insert))
            threads[-1].start()
            wait_until(lambda n=n: db.writers.queued == n + 1)
    for thread in threads:
        thread.join()
    with db.read() as conn:
        return [row[0] for row in conn.execute(text("SELECT n FROM arrivals ORDER BY rowid"))]


def test_sqlite_writers_commit_in_the_order_they_arrived(tmp_path: Path) -> None:
    arrivals = [f"ticket-{n}" for n in range(12)]
    assert commit_order(Database(sqlite_url(tmp_path)), arrivals) == arrivals


def test_paging_writes_go_before_the_others_queued(tmp_path: Path) -> None:
    """The delivery ledger, notification records and the INC number (``urgent``) overtake
    tickets and records already queued; among themselves, arrival order."""
    arrivals = ["ticket-1", "page-1", "record-2", "page-2", "ticket-3"]
    order = commit_order(Database(sqlite_url(tmp_path)), arrivals)
    assert order == ["page-1", "page-2", "ticket-1", "record-2", "ticket-3"]


def test_a_stream_of_paging_writes_lets_a_waiting_ticket_through(tmp_path: Path) -> None:
    """The paging lane is bounded: after URGENT_STREAK urgent turns in a row, a waiting
    ordinary writer goes next (it would otherwise wait for as long as pages keep coming)."""
    pages = [f"page-{n}" for n in range(2 * URGENT_STREAK + 4)]
    order = commit_order(Database(sqlite_url(tmp_path)), ["ticket-1", "record-2", *pages])
    assert order == [
        *pages[:URGENT_STREAK],
        "ticket-1",
        *pages[URGENT_STREAK : 2 * URGENT_STREAK],
        "record-2",
        *pages[2 * URGENT_STREAK :],
    ]


def test_a_thread_may_nest_its_turn() -> None:
    gate = WriterGate("sqlite")
    with gate.turn(), gate.turn(urgent=True):
        assert gate.queued == 0
    with gate.turn():  # released: free again
        pass


def test_a_writer_that_gives_up_leaves_the_queue() -> None:
    gate = WriterGate("sqlite", timeout_s=0.05)
    errors: list[BaseException] = []

    def late() -> None:
        try:
            with gate.turn():
                pass
        except OperationalError as err:  # as from SQLite's own busy timeout
            errors.append(err)

    with gate.turn():
        waiter = threading.Thread(target=late)
        waiter.start()
        waiter.join()
        assert gate.queued == 0
    assert len(errors) == 1 and "database is locked" in str(errors[0])
    got_in = threading.Event()

    def next_writer() -> None:
        with gate.turn():
            got_in.set()

    threading.Thread(target=next_writer).start()
    assert got_in.wait(5)  # the abandoned turn did not block the gate


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_postgresql_writers_are_not_gated(dialect: str) -> None:
    gate = WriterGate(dialect)
    entered = threading.Event()
    with gate.turn():

        def other() -> None:
            with gate.turn():
                entered.set()

        threading.Thread(target=other).start()
        assert entered.wait(5)  # concurrently, under PostgreSQL's row locks
