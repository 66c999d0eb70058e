"""The monthly report over many incident records, against a plain SQL aggregate.

    python benchmarks/report.py [--records 10000] [--rounds 5]

Fills a fresh SQLite database (the embedded default) with ``--records`` incident records
spread over one month, then, alternating for ``--rounds``:

(a) baseline: one plain SQL aggregate over the same table and period (count and mean time
    to resolve by severity), the least a report could cost;
(b) Firewatch: ``IncidentRecords.overlapping`` (the rows a report reads, parsed into
    records) plus ``domain.report.monthly_report`` (every figure, per severity, per service
    and overall, with trends), as ``GET /reports/monthly/<month>`` does.

Reported: the median time of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import insert, text

from activities.config import default_policy
from benchmarks.measure import machine_info
from domain.policy import Severity
from domain.records import IncidentRecord
from domain.report import monthly_report
from storage.database import Database, sqlite_url, timestamp
from storage.records import IncidentRecords
from storage.schema import incident_records

MONTH = "2026-11"
START = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # November in New York, in UTC
SQL = text(
    "SELECT severity, count(*), avg((julianday(resolved_at) - julianday(opened_at)) * 1440)"
    " FROM incident_records WHERE opened_at >= :lo AND opened_at < :hi GROUP BY severity"
)


def seed(database: Database, count: int) -> None:
    rng = random.Random(14)
    services = [f"svc-{i}" for i in range(20)]
    rows = []
    for n in range(count):
        opened = START + timedelta(seconds=rng.randrange(29 * 86400))
        severity = rng.choice(list(Severity))
        acked = opened + timedelta(minutes=rng.expovariate(1 / 12))
        resolved = (
            acked + timedelta(minutes=rng.expovariate(1 / 90)) if rng.random() > 0.05 else None
        )
        record = IncidentRecord(
            incident_id=f"INC-2026-11-{opened.day:02d}-{n:05d}",
            workflow_id=f"incident/bench/{n}",
            service=rng.choice(services),
            source="alertmanager",
            dedup_key=f"key-{rng.randrange(500)}",
            summary="benchmark",
            severity_at_open=severity,
            severity=severity,
            detected_at=opened - timedelta(seconds=rng.randrange(300)),
            detected_from_alert=True,
            opened_at=opened,
            acknowledged_at=acked,
            acknowledged_by="alice",
            resolved_at=resolved,
            status="Resolved" if resolved else "Investigating",
            max_level_paged=rng.choice([1, 1, 1, 2, 3]),
            pages=rng.randrange(1, 4),
            false_positive=rng.random() < 0.05,
            alert_count=rng.randrange(1, 20),
        )
        rows.append(
            {
                "incident_id": record.incident_id,
                "opened_at": timestamp(opened),
                "resolved_at": timestamp(resolved) if resolved else None,
                "severity": severity.value,
                "service": record.service,
                "version": 1,
                "record": record.model_dump_json(),
            }
        )
    with database.write() as db:
        db.execute(insert(incident_records), rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine_info(), flush=True)
    policy = default_policy()
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.open(sqlite_url(Path(tmp)))
        seed(database, args.records)
        records = IncidentRecords(database)
        lo, hi = START, START + timedelta(days=30)
        bare: list[float] = []
        ours: list[float] = []
        for round_ in range(1, args.rounds + 1):
            started = time.perf_counter()
            with database.read() as db:
                groups = db.execute(SQL, {"lo": timestamp(lo), "hi": timestamp(hi)}).all()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = monthly_report(records.overlapping(lo, hi), MONTH, policy, as_of=hi)
            ours.append(time.perf_counter() - started)
            print(
                f"round {round_}: plain SQL {bare[-1] * 1000:7.1f} ms ({len(groups)} groups),"
                f" report {ours[-1] * 1000:7.1f} ms ({report.overall.incidents} incidents)",
                flush=True,
            )
        b, o = statistics.median(bare), statistics.median(ours)
        print(
            f"{args.records} records: plain SQL median {b * 1000:.1f} ms,"
            f" report median {o * 1000:.1f} ms ({o / b:.0f}x the plain aggregate)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
