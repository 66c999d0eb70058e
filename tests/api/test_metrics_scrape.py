"""A Prometheus scrape is collected off the API's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.policy import Policy
from starter.api.app import create_app
from starter.api.context import ApiSettings


class LoopProbe(Collector):
    """Notes whether it was collected on a thread running an event loop."""

    def __init__(self) -> None:
        self.on_loop: list[bool] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        yield GaugeMetricFamily("firewatch_test_probe", "collected", value=1)


async def test_the_database_collectors_run_off_the_event_loop(
    default_policy: Policy, tmp_path: Path
) -> None:
    """The incident collectors read the database when scraped: on the loop, a scrape of a
    large database (or one waiting on PostgreSQL) would hold up alert ingress."""
    app = create_app(policy=default_policy, data=tmp_path, settings=ApiSettings())
    probe = LoopProbe()
    app.state.ctx.metrics.registry.register(probe)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://firewatch.test"
    ) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200 and "firewatch_test_probe 1.0" in answer.text
    assert probe.on_loop == [False]
