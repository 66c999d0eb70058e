"""INC numbers under concurrency: gapless per UTC day, exactly one per workflow run.

Every allocator has its own engine (its own connections), as separate worker processes
would; one test uses real processes. Each runs on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from storage.database import Database
from storage.store import Store
from tests.storage import processes
from tests.storage.locks import at_once

DAY = date(2026, 3, 3)
NEXT_DAY = date(2026, 3, 4)


def _allocate_all(url: str, keys: list[tuple[str, str]]) -> list[tuple[str, int]]:
    store = Store(Database(url))  # a fresh engine: nothing shared with the other allocators
    try:
        return [
            (key, store.allocate_incident_number(date.fromisoformat(day), key)) for day, key in keys
        ]
    finally:
        store.database.close()


def _keys(allocator: int, count: int, *, one_day: bool = False) -> list[tuple[str, str]]:
    """Each allocator opens ``count`` incidents on two days (or all on ``DAY``) and retries
    its first one (the same run: a retried activity), and retries another allocator's first."""
    own = [
        (
            (DAY if n % 3 or one_day else NEXT_DAY).isoformat(),
            f"incident/direct/a{allocator}-{n}#run",
        )
        for n in range(count)
    ]
    other = own[0][0], f"incident/direct/a{(allocator + 1) % 4}-0#run"
    return [*own, own[0], other]


def check(url: str, results: list[list[tuple[str, int]]], total: int) -> None:
    by_key: dict[str, set[int]] = {}
    for result in results:
        for key, number in result:
            by_key.setdefault(key, set()).add(number)
    # A run always gets the same number, whoever asks and however often.
    assert all(len(numbers) == 1 for numbers in by_key.values()), by_key
    assert len(by_key) == total
    store = Store(url)
    for day in (DAY, NEXT_DAY):
        prefix = f"INC-{day.isoformat()}-"
        found = store.incidents(f"{prefix}{n:03d}" for n in range(1, total + 1))
        # Gapless: 1..n for the day, one run each.
        assert sorted(found) == [f"{prefix}{n:03d}" for n in range(1, len(found) + 1)]
        assert len({(e.workflow_id, e.run_id) for e in found.values()}) == len(found)
    entries = store.incidents(
        f"INC-{d.isoformat()}-{n:03d}" for d in (DAY, NEXT_DAY) for n in range(1, total + 1)
    )
    assert len(entries) == total


def test_allocators_in_threads_get_contiguous_numbers_once_per_run(store_url: str) -> None:
    url = store_url
    Store(url)  # migrated once, as at start-up
    allocators, count = 4, 15
    results: list[list[tuple[str, int]]] = []
    at_once(allocators, lambda i: results.append(_allocate_all(url, _keys(i, count))))
    check(url, results, allocators * count)


def test_one_store_shared_by_many_threads(store_url: str) -> None:
    """The worker's case: one Store, 32 activity threads."""
    store = Store(store_url)
    numbers: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        for attempt in range(2):  # the second is a retry of the same run
            number = store.allocate_incident_number(DAY, f"incident/direct/k{i}#run")
            if attempt == 0:
                with lock:
                    numbers.append(number)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 33))


def _allocate_in_process(url: str, keys: list[tuple[str, str]], barrier: Any, out: Any) -> None:
    try:
        barrier.wait()
        out.put(("ok", _allocate_all(url, keys)))
    except BaseException as err:  # pragma: no cover - reported by the test
        out.put(("error", repr(err)))


def test_allocators_in_processes_get_contiguous_numbers_once_per_run(store_url: str) -> None:
    """Four worker processes open 50 incidents each on the same day, at once: 1..200."""
    url = store_url
    Store(url)
    ctx = processes.context()
    allocators, count = 4, 50
    barrier = ctx.Barrier(allocators)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_allocate_in_process, args=(url, _keys(i, count, one_day=True), barrier, out)
        )
        for i in range(allocators)
    ]
    for proc in procs:
        proc.start()
    answers = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert [status for status, _ in answers] == ["ok"] * allocators, answers
    results = [result for _, result in answers]
    check(url, results, allocators * count)
    numbers = sorted({number for result in results for _, number in result})
    assert numbers == list(range(1, allocators * count + 1))
