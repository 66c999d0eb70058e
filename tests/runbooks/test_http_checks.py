"""``http`` and ``status_page`` checks against real servers on loopback."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

import activities.runbooks.common as common
from activities.runbooks import RunbookActivities, RunCheck
from activities.runbooks.checks import run_http, run_status_page
from domain.runbooks import HttpCheck, Outcome, StatusPageCheck
from tests.channels.fake_http import BlackHole, free_port
from tests.runbooks.servers import HealthServer, StatusPage

ENV = {"HEALTH_KEY": "hk-123"}


def http(url: str, **fields: object) -> HttpCheck:
    return HttpCheck.model_validate({"name": "health", "url": url, **fields})


# ---- http -------------------------------------------------------------------------------------


async def test_healthy_endpoint_is_ok_with_its_latency(health: HealthServer) -> None:
    result = await run_http(http(f"{health.url}/health"))
    assert result.outcome == Outcome.OK
    assert re.fullmatch(r"ok \d+ms", result.summary), result.summary
    assert result.latency_ms is not None and 0 <= result.latency_ms < 2000
    assert (result.name, result.kind, result.value) == ("health", "http", None)
    assert result.started_at is not None


async def test_json_path_value_is_reported(health: HealthServer) -> None:
    # The seed's `curl -s .../health/detailed | jq '.database'`.
    whole = await run_http(http(f"{health.url}/health/detailed", json_path="database"))
    assert (whole.outcome, whole.summary) == (Outcome.OK, "ok (database: up)")
    assert json.loads(whole.value or "") == {"status": "up", "latency_ms": 3}

    leaf = await run_http(http(f"{health.url}/health/detailed", json_path="database.status"))
    assert (leaf.outcome, leaf.summary, leaf.value) == (Outcome.OK, "ok (database: up)", "up")

    number = await run_http(http(f"{health.url}/health/detailed", json_path="database.latency_ms"))
    assert (number.summary, number.value) == ("ok (database.latency_ms: 3)", "3")


async def test_expected_value_fails_the_check_when_it_differs(health: HealthServer) -> None:
    # A 200 whose JSON says the database is down is not healthy: the seed's jq check, judged.
    health.mode = "down"
    ok_status = [200, 503]
    down = await run_http(
        http(
            f"{health.url}/health/detailed",
            json_path="database",
            expect_value="up",
            expect_status=ok_status,
        )
    )
    assert (down.outcome, down.summary) == (Outcome.FAILED, "database: down, not up")
    health.mode = "healthy"
    up = await run_http(
        http(f"{health.url}/health/detailed", json_path="database.status", expect_value="up")
    )
    assert (up.outcome, up.summary) == (Outcome.OK, "ok (database: up)")
    with pytest.raises(ValidationError, match="expect_value needs a json_path"):
        http(f"{health.url}/health", expect_value="up")


async def test_503_fails_with_the_status(health: HealthServer) -> None:
    health.mode = "down"
    result = await run_http(http(f"{health.url}/health/detailed", json_path="database"))
    assert (result.outcome, result.summary) == (Outcome.FAILED, "503")
    assert result.value is not None and "pool exhausted" in result.value  # the answer, for people
    accepted = await run_http(http(f"{health.url}/health", expect_status=[200, 503]))
    assert accepted.outcome == Outcome.OK


async def test_hanging_endpoint_times_out(health: HealthServer) -> None:
    health.mode = "hang"
    began = time.monotonic()
    result = await run_http(http(f"{health.url}/health", timeout="1s"))
    assert (result.outcome, result.summary) == (Outcome.ERROR, "timed out after 1s")
    assert time.monotonic() - began < 3


async def test_host_that_never_answers_times_out(black_hole: BlackHole) -> None:
    result = await run_http(http(black_hole.url, timeout=timedelta(milliseconds=500)))
    assert (result.outcome, result.summary) == (Outcome.ERROR, "timed out after 500ms")


async def test_slow_answer_fails_the_latency_threshold(health: HealthServer) -> None:
    health.mode, health.delay = "slow", 0.3
    result = await run_http(http(f"{health.url}/health", max_latency="0.1s"))
    assert result.outcome == Outcome.FAILED
    assert re.fullmatch(r"slow \d{3}ms > 100ms", result.summary), result.summary
    assert result.latency_ms is not None and result.latency_ms >= 300


async def test_unreachable_hosts_say_so_plainly() -> None:
    closed = free_port()
    result = await run_http(http(f"http://127.0.0.1:{closed}/health"))
    assert (result.outcome, result.summary) == (Outcome.ERROR, f"unreachable: 127.0.0.1:{closed}")
    # The seed's placeholder hosts: the name does not resolve.
    nowhere = await run_http(http("https://api.madplan.invalid/health", timeout="5s"))
    assert (nowhere.outcome, nowhere.summary) == (Outcome.ERROR, "unreachable: api.madplan.invalid")


async def test_headers_come_from_the_environment(health: HealthServer) -> None:
    check = http(f"{health.url}/health", headers_from_env={"X-Api-Key": "HEALTH_KEY"})
    result = await run_http(check, ENV)
    assert result.outcome == Outcome.OK
    assert health.calls[-1].request.header("X-Api-Key") == "hk-123"


async def test_a_missing_env_var_is_named_and_nothing_is_sent(health: HealthServer) -> None:
    check = http(f"{health.url}/health", headers_from_env={"X-Api-Key": "HEALTH_KEY"})
    result = await run_http(check, {})
    assert (result.outcome, result.summary) == (Outcome.ERROR, "HEALTH_KEY is not set")
    assert health.calls == []


async def test_json_path_problems_fail(health: HealthServer) -> None:
    plain = await run_http(http(f"{health.url}/plain", json_path="database"))
    assert (plain.outcome, plain.summary) == (Outcome.FAILED, "200, not JSON")
    absent = await run_http(http(f"{health.url}/health/detailed", json_path="database.nope"))
    assert (absent.outcome, absent.summary) == (Outcome.FAILED, "no database.nope in the answer")


async def test_post_method(health: HealthServer) -> None:
    post = await run_http(http(f"{health.url}/health", method="POST"))
    assert post.outcome == Outcome.OK
    assert health.calls[-1].request.method == "POST"


# ---- status_page ------------------------------------------------------------------------------


def page(url: str) -> StatusPageCheck:
    return StatusPageCheck(name="sentry", url=url)


async def test_operational_status_page(status_page: StatusPage) -> None:
    result = await run_status_page(page(status_page.url))
    assert (result.outcome, result.summary) == (Outcome.OK, "ok")
    assert result.value == "none: All Systems Operational"


async def test_degraded_status_page_names_the_components(status_page: StatusPage) -> None:
    status_page.state = "degraded"
    result = await run_status_page(page(status_page.url + "/"))
    assert (result.outcome, result.summary) == (Outcome.FAILED, "degraded: API, Webhooks")
    assert result.value == (
        "minor: Partially Degraded Service\nAPI: degraded performance\nWebhooks: partial outage"
    )
    status_page.state = "major"
    major = await run_status_page(page(status_page.url))
    assert major.summary == "major outage: API, Webhooks"


async def test_status_page_errors(health: HealthServer) -> None:
    closed = free_port()
    gone = await run_status_page(page(f"http://127.0.0.1:{closed}"))
    assert (gone.outcome, gone.summary) == (Outcome.ERROR, f"unreachable: 127.0.0.1:{closed}")
    wrong = await run_status_page(page(health.url))  # not a status page: 404
    assert (wrong.outcome, wrong.summary) == (Outcome.ERROR, "status page answered 404")


# ---- through the activity ---------------------------------------------------------------------


async def test_run_check_activity_heartbeats_while_a_check_hangs(
    runbooks: RunbookActivities, health: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "HEARTBEAT_EVERY_S", 0.1)
    health.mode = "hang"
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    inp = RunCheck(incident_id="INC-1", service="api", check=http(health.url, timeout="1s"))
    result = await env.run(runbooks.run_check, inp)
    assert result.summary == "timed out after 1s"
    assert len(beats) >= 5
