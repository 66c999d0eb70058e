"""Incident and paging metrics for Prometheus, read from Firewatch's database at scrape time.

The worker decides and pages; the API exports what the database records, so every API
replica reports the same numbers and a restart loses none:

* ``firewatch_incidents_total{severity,service}``: incidents opened (severity at opening);
* ``firewatch_incident_time_to_ack_seconds{severity}`` and
  ``firewatch_incident_time_to_resolve_seconds{severity}``: histograms from the incident
  records (opened → first acknowledgement, opened → resolved);
* ``firewatch_pages_total{channel,outcome}``: pages by the channel that carried them and
  how it went (sent, failed, ...), from the outbox.

All are cumulative since the database began, as Prometheus counters and histograms are:
use ``increase()`` / ``rate()`` over a range, as the shipped Grafana dashboard does.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from storage.database import Database
from storage.records import IncidentRecords
from storage.schema import outbox

# Seconds: 1 min to 1 day, around the seed's SLAs (15 min, 1 h) and resolution times.
BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0)


def _histogram(name: str, doc: str, samples: dict[str, list[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["severity"])
    for severity, values in sorted(samples.items()):
        ordered = sorted(values)
        # Prometheus buckets count the values less than or equal to their bound.
        cumulative = [(str(b), float(bisect_right(ordered, b))) for b in BUCKETS]
        family.add_metric(
            [severity], [*cumulative, ("+Inf", float(len(ordered)))], sum_value=sum(ordered)
        )
    return family


class IncidentFacts(Collector):
    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database

    def collect(self) -> Iterable[Metric]:
        database = self._database()
        opened: Counter[tuple[str, str]] = Counter()
        to_ack: dict[str, list[float]] = defaultdict(list)
        to_resolve: dict[str, list[float]] = defaultdict(list)
        for record in IncidentRecords(database).all():
            severity = record.severity_at_open.value
            opened[(severity, record.service)] += 1
            if record.acknowledged_at is not None:
                to_ack[severity].append((record.acknowledged_at - record.opened_at).total_seconds())
            if record.resolved_at is not None:
                elapsed = (record.resolved_at - record.opened_at).total_seconds()
                to_resolve[severity].append(elapsed)
        incidents = CounterMetricFamily(
            "firewatch_incidents", "Incidents opened", labels=["severity", "service"]
        )
        for (severity, service), count in sorted(opened.items()):
            incidents.add_metric([severity, service], count)
        yield incidents
        yield _histogram(
            "firewatch_incident_time_to_ack_seconds",
            "Opened to first acknowledgement, by severity at opening",
            to_ack,
        )
        yield _histogram(
            "firewatch_incident_time_to_resolve_seconds",
            "Opened to resolved, by severity at opening",
            to_resolve,
        )
        pages = CounterMetricFamily(
            "firewatch_pages", "Pages by channel and outcome", labels=["channel", "outcome"]
        )
        o = outbox.c
        query = (
            select(o.channel, o.status, func.count())
            .where(o.kind == "page")
            .group_by(o.channel, o.status)
        )
        with database.read() as db:
            for channel, status, count in db.execute(query).all():
                pages.add_metric([str(channel), str(status)], int(count))
        yield pages
