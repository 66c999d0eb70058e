"""POST /v2/change/enqueue with the real PagerDuty clients (pdpyras and pagerduty 7.x)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pdpyras  # type: ignore[import-untyped]
import pytest
from pagerduty import EventsApiV2Client

from tests.api.api_support import ApiStack, unique
from tests.changes.conftest import Run, add_pagerduty_integration, stored

PATH = "/v2/change/enqueue"


def change_session(feed: ApiStack, key: str) -> Any:
    session = pdpyras.ChangeEventsAPISession(key)
    session.url = feed.url
    return session


def test_pdpyras_change_event_shows_in_the_feed_and_the_cli(
    feed: ApiStack, http: httpx.Client, firewatch: Run
) -> None:
    service = "checkout"  # used by this test only: the golden text names it
    key = add_pagerduty_integration(http, service)
    session = change_session(feed, key)
    session.submit(
        "Deploy v412: connection pool 20 -> 50",
        source="github-actions/deploy.yml#812",
        custom_details={"sha": "3f9c2a1", "environment": "production"},
        links=[{"href": "https://ci.example/runs/812", "text": "Build 812"}],
        timestamp="2026-11-28T09:15:30.500000Z",
    )

    [change] = http.get("/changes", params={"service": service}).json()
    assert change["summary"] == "Deploy v412: connection pool 20 -> 50"
    assert change["service"] == service
    assert change["who"] == "github-actions/deploy.yml#812"
    assert change["at"] == "2026-11-28T09:15:30.500000Z"
    assert change["source"] == "pagerduty"
    assert change["integration"] == f"pagerduty-{service}"
    assert change["links"] == [{"href": "https://ci.example/runs/812", "text": "Build 812"}]
    assert change["details"] == {"sha": "3f9c2a1", "environment": "production"}
    uuid.UUID(change["change_id"])  # PagerDuty change events carry no key: one is made up

    result = firewatch("changes", "--service", service)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "WHEN (UTC)           SERVICE   WHO                            SUMMARY\n"
        "2026-11-28 09:15:30  checkout  github-actions/deploy.yml#812  Deploy v412: connection"
        " pool 20 -> 50\n"
    )


def test_pdpyras_events_without_timestamp_or_source(feed: ApiStack, http: httpx.Client) -> None:
    service = unique("search")
    session = change_session(feed, add_pagerduty_integration(http, service))
    before = datetime.now(UTC)
    session.send_change_event(
        routing_key=session.api_key, payload={"summary": "Feature flag new-ranking on"}
    )
    session.send_change_event(
        routing_key=session.api_key, payload={"summary": "Feature flag new-ranking on"}
    )
    changes = stored(feed, service)
    # No key in a change event: a repeat is another change, as at PagerDuty.
    assert [c.summary for c in changes] == ["Feature flag new-ranking on"] * 2
    assert len({c.change_id for c in changes}) == 2
    for change in changes:
        assert change.who is None
        assert before <= change.at <= datetime.now(UTC)
        assert change.at == change.received_at


def test_the_pagerduty_client_sends_a_change_event(feed: ApiStack, http: httpx.Client) -> None:
    service = unique("billing")
    client = EventsApiV2Client(add_pagerduty_integration(http, service))
    client._url = feed.url  # the client refuses http:// through its setter
    client.send_change_event(
        payload={
            "summary": "Config: raise billing worker concurrency to 8",
            "source": "terraform",
            "timestamp": "2026-11-28T10:00:00.000+0000",
            "custom_details": {"plan": "https://tf.example/plan/77"},
        },
        links=[{"href": "https://tf.example/runs/77"}],
    )
    [change] = stored(feed, service)
    assert (change.summary, change.who) == (
        "Config: raise billing worker concurrency to 8",
        "terraform",
    )
    assert change.at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert [link.href for link in change.links] == ["https://tf.example/runs/77"]
    assert change.links[0].text is None


def test_a_policy_integration_sets_the_service(feed: ApiStack, http: httpx.Client) -> None:
    summary = unique("Deploy db migration")
    response = http.post(
        PATH, json={"routing_key": feed.key("pd-db"), "payload": {"summary": summary}}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "success", "message": "Change event processed"}
    [change] = [c for c in stored(feed, "database") if c.summary == summary]
    assert change.integration == "pd-db"


def _refused(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "invalid event"
    assert body["message"]
    errors: list[str] = body["errors"]
    return errors


@pytest.mark.parametrize(
    "event",
    [
        {"payload": {"summary": "Deploy v413"}},
        {"routing_key": "", "payload": {"summary": "Deploy v413"}},
        {"routing_key": None, "payload": {"summary": "Deploy v413"}},
    ],
    ids=["absent", "empty", "null"],
)
def test_a_change_event_without_a_routing_key_is_400_and_stores_nothing(
    feed: ApiStack, event: dict[str, Any]
) -> None:
    before = stored(feed)
    with httpx.Client(base_url=feed.url, timeout=30) as raw:
        errors = _refused(raw.post(PATH, json=event))
    assert errors == ["routing_key: Field required"]
    assert stored(feed) == before


def test_pdpyras_without_a_routing_key_gets_400(feed: ApiStack) -> None:
    before = stored(feed)
    # send_change_event sends the event as given: here without its routing_key.
    session = change_session(feed, "unused")
    with pytest.raises(pdpyras.PDHTTPError) as refused:
        session.send_change_event(payload={"summary": "Deploy v413"})
    assert refused.value.response.status_code == 400
    assert stored(feed) == before


@pytest.mark.parametrize("which", ["unknown", "generic", "number"])
def test_an_unknown_routing_key_is_400_and_stores_nothing(feed: ApiStack, which: str) -> None:
    key: Any = {
        "unknown": uuid.uuid4().hex,
        "generic": feed.key("generic"),  # a key, but not a PagerDuty integration's
        "number": 12345,
    }[which]
    before = stored(feed)
    with httpx.Client(base_url=feed.url, timeout=30) as raw:
        errors = _refused(raw.post(PATH, json={"routing_key": key, "payload": {"summary": "x"}}))
    assert len(errors) == 1 and errors[0].startswith("routing_key: ")
    assert stored(feed) == before


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({}, "payload: Field required"),
        ({"payload": {}}, "payload.summary: Field required"),
        ({"payload": {"summary": ""}}, "payload.summary: String should have at least 1 character"),
        ({"payload": {"summary": "x" * 1025}}, "payload.summary: String should have at most"),
        ({"payload": {"summary": "x", "timestamp": 1767225600}}, "payload.timestamp: "),
        ({"payload": {"summary": "x", "timestamp": "2026-11-28T09:00:00"}}, "payload.timestamp"),
        ({"payload": {"summary": "x", "custom_details": "text"}}, "payload.custom_details: "),
        ({"payload": {"summary": "x"}, "links": [{"text": "no href"}]}, "links.0.href: Field"),
        ({"payload": {"summary": "x"}, "links": "https://x"}, "links: "),
    ],
)
def test_a_bad_change_event_is_400_in_pagerdutys_shape(
    feed: ApiStack, event: dict[str, Any], error: str
) -> None:
    before = stored(feed)
    with httpx.Client(base_url=feed.url, timeout=30) as raw:
        errors = _refused(raw.post(PATH, json={"routing_key": feed.key("pagerduty"), **event}))
    assert any(e.startswith(error) for e in errors), errors
    assert stored(feed) == before


def test_malformed_json_is_400_in_pagerdutys_shape(feed: ApiStack) -> None:
    before = stored(feed)
    with httpx.Client(base_url=feed.url, timeout=30) as raw:
        response = raw.post(
            PATH, content=b'{"routing_key": ', headers={"Content-Type": "application/json"}
        )
    _refused(response)
    assert stored(feed) == before


def test_an_oversized_change_event_is_413_in_pagerdutys_shape(feed: ApiStack) -> None:
    before = stored(feed)
    event = {"routing_key": feed.key("pagerduty"), "payload": {"summary": "x" * 600_000}}
    with httpx.Client(base_url=feed.url, timeout=30) as raw:
        response = raw.post(PATH, json=event)
    assert response.status_code == 413
    assert response.json()["status"] == "invalid event"
    assert stored(feed) == before
