"""Real processes for the concurrency tests, started cheaply.

Each test process is a separate interpreter with its own engine and connections, as the
worker, the API and ``make up`` are. They come from a fork server that has already
imported the storage layer and both drivers: a spawned interpreter spends 1-2 s of CPU
importing them, and as long again shutting down, which on a 2-core machine made one
four-process test take 10 s; a fork-server child starts and exits in milliseconds. (Not
plain ``fork``: the pytest process runs threads, which a fork would copy mid-state.)
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext

PRELOAD = [
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "storage.store",
    "storage.ledger",
    "storage.migrate",
]


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # used when the server starts (first process)
    return ctx
