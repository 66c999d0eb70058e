"""The shipped Grafana dashboard charts only metrics the API exports, with valid panels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "firewatch-dashboard.json"
_METRIC = re.compile(r"\bfirewatch_[a-z_]+")


async def test_every_panel_queries_an_exported_metric(http: httpx.AsyncClient) -> None:
    exported: set[str] = set()
    for family in text_string_to_metric_families((await http.get("/metrics")).text):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "firewatch" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _METRIC.findall(target["expr"])
            assert names, target["expr"]
            for name in names:
                # A family is named without the suffixes of its samples (counters' _total,
                # histograms' _bucket, _count and _sum), and has them once it has samples.
                family = re.sub(r"_(total|bucket|count|sum)$", "", name)
                assert name in exported or family in exported, name
