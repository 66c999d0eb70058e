"""Concurrency for storage tests: SQLite's write lock held from another connection, as a
second process would; and work started in several threads at the same instant."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from storage.database import DB_FILE


async def hold_the_write_lock(data_dir: Path, seconds: float) -> threading.Thread:
    """Take the data dir's SQLite write lock for ``seconds`` in a thread; returns once it is
    held, with the thread to join."""
    held = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    await asyncio.to_thread(held.wait)
    return holder


def at_once(count: int, work: Callable[[int], None]) -> None:
    """``work(0)`` … ``work(count - 1)`` in threads released together; fails on any error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
