"""Holding SQLite's write lock from another connection, as a second process would."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
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
