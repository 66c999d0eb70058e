"""The delivery ledger's rules, on the storage layer (the channel tests use it end to end),
on SQLite and PostgreSQL; and across hosts: attempts in separate processes, each with its
own engine, racing on one key or retrying one that died mid-call."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from activities.channels.base import TransientDeliveryError
from activities.channels.once import Claim, deliver_once
from storage.database import Database
from storage.ledger import Ledger
from storage.store import Store
from tests.storage import processes

INCIDENT = "INC-2026-03-03-001"
KEY = f"{INCIDENT}:page-1:carol:sms"


def test_before_and_after_records(store_url: str) -> None:
    ledger = Ledger(Store(store_url).database)
    key = "INC-2026-03-03-001:page-1:carol:sms"
    assert ledger.get(key) is None
    ledger.begin(key, incident_id="INC-2026-03-03-001", channel="sms", address="+1555")
    row = ledger.get(key)
    assert row is not None and (row.status, row.tries, row.provider_id) == ("pending", 1, None)
    ledger.finish(key, "unknown", provider_id="SM1", detail="timeout")
    ledger.begin(key, incident_id="INC-2026-03-03-001", channel="sms", address="+1555")
    row = ledger.get(key)
    assert row is not None and (row.status, row.tries, row.provider_id) == ("pending", 2, "SM1")
    ledger.finish(key, "sent")  # no provider id given: the known one is kept
    row = ledger.get(key)
    assert row is not None and (row.status, row.provider_id, row.detail) == ("sent", "SM1", None)
    # Sent is final: neither a new attempt nor a late answer changes it.
    ledger.begin(key, incident_id="INC-2026-03-03-001", channel="sms", address="+1555")
    ledger.finish(key, "failed", detail="late")
    assert ledger.get(key) == row
    other = "INC-2026-03-03-001:page-1:carol:voice"
    ledger.begin(other, incident_id="INC-2026-03-03-001", channel="voice", address="+1555")
    assert [r.idempotency_key for r in ledger.rows("INC-2026-03-03-001")] == [key, other]
    assert ledger.rows("INC-2026-03-03-002") == []


def test_a_pending_record_names_the_attempt_that_claimed_it(store_url: str) -> None:
    ledger = Ledger(Store(store_url).database)
    claim = dict(incident_id=INCIDENT, channel="sms", address="+1555")
    ledger.begin(KEY, **claim, claimed_by="run-1/3#1")
    assert ledger.get(KEY).claimed_by == "run-1/3#1"  # type: ignore[union-attr]
    ledger.begin(KEY, **claim, claimed_by="run-1/3#2")  # the retry takes it over
    row = ledger.get(KEY)
    assert row is not None and (row.tries, row.claimed_by) == (2, "run-1/3#2")


@pytest.mark.parametrize(
    ("claimed_by", "follows"),
    [
        ("run-1/3#1", True),  # this activity's attempt 1: Temporal gave it up
        ("run-1/3#2", False),  # this very attempt (it claimed, then looked again)
        ("run-1/3#5", False),  # a later attempt: not possible, so not assumed over
        ("run-1/4#1", False),  # another activity of the run
        ("run-2/3#1", False),  # the same activity id in another run
        ("run-1/3", False),
        ("run-1/3#x", False),
        (None, False),  # written before claims were recorded
    ],
)
def test_a_retry_follows_only_its_own_earlier_attempts(
    claimed_by: str | None, follows: bool
) -> None:
    assert Claim("run-1/3", 2).follows(claimed_by) is follows


def test_small_facts_and_the_sqlite_path(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.path == tmp_path / "firewatch.db"
    by_path = Ledger(store.path)  # the older way: the same database, the same engine
    assert by_path.database is store.database
    assert by_path.value("slack:message:INC-1") is None
    by_path.set_value("slack:message:INC-1", "1700000000.000100")
    by_path.set_value("slack:room:INC-1", {"id": "C1", "invited": ["U1"]})
    by_path.set_value("slack:message:INC-1", "1700000000.000200")
    ledger = Ledger(store.database)
    assert ledger.value("slack:message:INC-1") == "1700000000.000200"
    assert ledger.value("slack:room:INC-1") == {"id": "C1", "invited": ["U1"]}


def test_small_facts_on_both_databases(store_url: str) -> None:
    ledger = Ledger(store_url)
    ledger.set_value("slack:room:INC-1", {"id": "C1", "invited": ["U1"]})
    ledger.set_value("slack:room:INC-1", {"id": "C1", "invited": ["U1", "U2"]})
    assert Ledger(Database(store_url)).value("slack:room:INC-1") == {
        "id": "C1",
        "invited": ["U1", "U2"],
    }


def _begin_in_process(url: str, barrier: Any, out: Any) -> None:
    try:
        db = Database(url)  # another host: its own engine and connections
        barrier.wait()
        before = Ledger(db).begin(
            KEY, incident_id="INC-2026-03-03-001", channel="sms", address="+1"
        )
        out.put(("ok", before.status if before is not None else None))
        db.close()
    except BaseException as err:  # pragma: no cover - reported by the test
        out.put(("error", repr(err)))


def test_hosts_racing_on_one_key_make_one_pending_record(store_url: str) -> None:
    """Four hosts begin the same delivery at once: one record, and exactly one of them is
    first; every other one is told the delivery is already pending (outcome unknown)."""
    Store(store_url)  # migrated, as at start-up
    ctx = processes.context()
    hosts = 4
    barrier, out = ctx.Barrier(hosts), ctx.Queue()
    procs = [
        ctx.Process(target=_begin_in_process, args=(store_url, barrier, out)) for _ in range(hosts)
    ]
    for proc in procs:
        proc.start()
    answers = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sorted(answers, key=repr) == [("ok", "pending")] * (hosts - 1) + [("ok", None)]
    [row] = Ledger(store_url).rows("INC-2026-03-03-001")
    assert (row.idempotency_key, row.status, row.tries) == (KEY, "pending", hosts)


def _retry_on_another_host(url: str, key: str, at_provider: str | None, out: Any) -> None:
    """A retry of the delivery on another worker: ``deliver_once`` as the channels run it."""
    sent: list[str] = []

    async def send() -> str:
        sent.append("sent")
        return "SM-new"

    async def find(since: datetime) -> str | None:
        return at_provider

    try:
        db = Database(url)
        outcome = asyncio.run(
            deliver_once(
                Ledger(db),
                key=key,
                incident_id=INCIDENT,
                channel="sms",
                address="+1",
                send=send,
                find=find,
                lease_s=0,  # the first attempt's lease is over: it is not in flight any more
            )
        )
        out.put((outcome.status, outcome.provider_id, sent))
        db.close()
    except BaseException as err:  # pragma: no cover - reported by the test
        out.put(("error", repr(err), []))


def test_a_retry_on_another_host_asks_the_provider_before_sending(store_url: str) -> None:
    """Host A records pending and dies mid-call. The retry on host B finds the pending
    record, asks the provider, and sends nothing when the provider has the message; sends
    once when the provider has none."""
    Store(store_url)  # migrated, as at start-up
    ctx = processes.context()
    cases: list[tuple[str | None, tuple[str, str, list[str]]]] = [
        ("SM1", ("found", "SM1", [])),  # the provider has it: not sent again
        (None, ("sent", "SM-new", ["sent"])),  # it has not: sent, once
    ]
    for n, (at_provider, expected) in enumerate(cases):
        key = f"{KEY}-{n}"
        host_a = Database(store_url)
        ledger_a = Ledger(host_a)
        assert ledger_a.begin(key, incident_id=INCIDENT, channel="sms", address="+1") is None
        host_a.close()  # host A is gone: no 'after' record
        out = ctx.Queue()
        host_b = ctx.Process(target=_retry_on_another_host, args=(store_url, key, at_provider, out))
        host_b.start()
        answer = out.get(timeout=60)
        host_b.join(30)
        assert answer == expected
        row = Ledger(store_url).get(key)
        assert row is not None and (row.status, row.provider_id) == ("sent", expected[1])
        assert row.tries == (1 if at_provider else 2)  # found: no second 'before' record


def test_two_hosts_delivering_at_once_send_once(store_url: str) -> None:
    """Two workers run the same delivery at the same moment (both read "no record"): only
    the one whose claim is first calls the provider; the other is told to retry later."""
    Store(store_url)  # migrated, as at start-up
    hosts = [Database(store_url), Database(store_url)]
    sent: list[int] = []
    both_read = asyncio.Barrier(2)  # neither claims before both have read "no record"

    class SlowFirstRead(Ledger):
        def get(self, key: str) -> Any:
            row = super().get(key)
            asyncio.run_coroutine_threadsafe(both_read.wait(), loop).result(10)
            return row

    async def attempt(n: int) -> str:
        async def send() -> str:
            sent.append(n)
            return f"SM{n}"

        try:
            outcome = await deliver_once(
                SlowFirstRead(hosts[n]),
                key=f"{KEY}-race",
                incident_id=INCIDENT,
                channel="sms",
                address="+1",
                send=send,
                find=None,
                lease_s=30,
            )
        except TransientDeliveryError as err:
            return f"retry: {err.reason}"
        return outcome.status

    async def main() -> list[str]:
        return list(await asyncio.gather(attempt(0), attempt(1)))

    loop = asyncio.new_event_loop()
    try:
        answers = loop.run_until_complete(main())
    finally:
        loop.close()
        for db in hosts:
            db.close()
    # The loser finds the key claimed (retry later) or, if the winner was quicker, sent.
    assert sorted(answers)[1] == "sent"
    assert sorted(answers)[0] in ("duplicate", "retry: another attempt claimed this delivery first")
    assert len(sent) == 1
    row = Ledger(store_url).get(f"{KEY}-race")
    assert row is not None and row.status == "sent" and row.provider_id == f"SM{sent[0]}"
