"""Real HTTP servers on loopback for the runbook tests (on tests/channels/fake_http.py).

* :class:`HealthServer`: ``/health`` and ``/health/detailed``, switchable between
  ``healthy``, ``down`` (503), ``slow`` and ``hang``.
* :class:`StatusPage`: an Atlassian Statuspage (``/api/v2/status.json``, ``components.json``),
  ``operational`` or ``degraded``.
* :class:`DeployTool`: a deploy tool's rollback hook that records every call and executes
  each ``Idempotency-Key`` once (a repeat gets the first answer again, Stripe-style).
* :class:`Exporter`: a ``/metrics`` text endpoint for Prometheus to scrape.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.channels.fake_http import FakeHttpServer, Reply, Request

HEALTHY_DETAIL = {"status": "ok", "database": {"status": "up", "latency_ms": 3}}
DOWN_DETAIL = {"status": "error", "database": {"status": "down", "error": "pool exhausted"}}


class HealthServer(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.mode = "healthy"  # healthy, down, slow, hang
        self.delay = 0.0  # seconds, in ``slow``
        self.unhang = threading.Event()

    def route(self, name: str, request: Request) -> Reply:
        if self.mode == "hang":
            self.unhang.wait(60)
        if self.mode == "slow":
            time.sleep(self.delay)
        down = self.mode == "down"
        if request.path == "/health":
            return Reply(503, {"status": "error"}) if down else Reply(200, {"status": "ok"})
        if request.path == "/health/detailed":
            return Reply(503, DOWN_DETAIL) if down else Reply(200, HEALTHY_DETAIL)
        if request.path == "/plain":
            return Reply(200, "fine", content_type="text/plain")
        return Reply(404, {"error": "not found"})

    def stop(self) -> None:
        self.unhang.set()
        super().stop()


def _component(cid: str, name: str, status: str, **more: Any) -> dict[str, Any]:
    return {"id": cid, "name": name, "status": status, "group": False, "group_id": None, **more}


class StatusPage(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.state = "operational"  # operational, degraded, major

    def route(self, name: str, request: Request) -> Reply:
        page = {"id": "abc123", "name": "Sentry", "url": self.url}
        if request.path == "/api/v2/status.json":
            indicator, description = {
                "operational": ("none", "All Systems Operational"),
                "degraded": ("minor", "Partially Degraded Service"),
                "major": ("major", "Partial System Outage"),
            }[self.state]
            status = {"indicator": indicator, "description": description}
            return Reply(200, {"page": page, "status": status})
        if request.path == "/api/v2/components.json":
            bad = self.state != "operational"
            api = "degraded_performance" if bad else "operational"
            hooks = "partial_outage" if bad else "operational"
            components = [
                {"id": "g1", "name": "Core", "status": api, "group": True},
                _component("c1", "API", api, group_id="g1"),
                _component("c2", "Webhooks", hooks, group_id="g1"),
                _component("c3", "Dashboard", "operational"),
            ]
            return Reply(200, {"page": page, "components": components})
        return Reply(404, {"error": "not found"})


@dataclass
class Execution:
    path: str
    key: str | None
    body: bytes


class DeployTool(FakeHttpServer):
    """Every call is in ``calls`` (method, path, headers, raw body); ``executed`` holds what
    was actually done, once per Idempotency-Key."""

    def __init__(self) -> None:
        super().__init__()
        self.executed: list[Execution] = []
        self._answers: dict[str, Reply] = {}

    def route(self, name: str, request: Request) -> Reply:
        key = request.header("Idempotency-Key")
        with self.lock:
            if key is not None and key in self._answers:
                first = self._answers[key]
                return Reply(first.status, first.body, {"Idempotent-Replayed": "true"})
            self.executed.append(Execution(request.path, key, request.raw))
            reply = Reply(202, {"id": f"dep-{len(self.executed)}", "status": "rolling back"})
            if key is not None:
                self._answers[key] = reply
            return reply

    def reset(self) -> None:
        """Forget every call, key, fault and hold (a hold still waiting is released)."""
        with self.lock:
            for hold in self.holds:
                hold.release()
            self.calls.clear()
            self.faults.clear()
            self.holds.clear()
            self.executed.clear()
            self._answers.clear()

    def executions(self, path: str) -> list[Execution]:
        with self.lock:
            return [e for e in self.executed if e.path == path]


class Exporter(FakeHttpServer):
    """``/metrics`` in the Prometheus text format, from ``values`` (series → value)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, float] = {}

    def route(self, name: str, request: Request) -> Reply:
        if request.path != "/metrics":
            return Reply(404, "not found", content_type="text/plain")
        with self.lock:
            lines = [f"{series} {value}" for series, value in self.values.items()]
        text = "\n".join(lines) + "\n"
        return Reply(200, text, content_type="text/plain; version=0.0.4")
