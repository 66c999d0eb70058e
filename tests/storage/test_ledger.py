"""The delivery ledger's rules, on the storage layer (the channel tests use it end to end)."""

from __future__ import annotations

from pathlib import Path

from storage.ledger import Ledger
from storage.store import Store


def test_before_and_after_records(tmp_path: Path) -> None:
    ledger = Ledger(Store(tmp_path).database)
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
