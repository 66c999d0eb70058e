"""POST /changes (CI/CD) and GET /changes, against the real API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from starter.api_client import FirewatchClient
from tests.api.api_support import ApiStack, unique
from tests.changes.conftest import stored


def deploy(service: str, **fields: Any) -> dict[str, Any]:
    return {"service": service, "summary": "Deploy v412", "who": "alice", **fields}


def test_a_change_is_stored_and_listed(http: httpx.Client) -> None:
    service = unique("api")
    body = deploy(
        service,
        at="2026-11-28T10:15:00+01:00",
        links=[{"href": "https://ci.example/runs/412", "text": "run 412"}],
        details={"sha": "3f9c2a1"},
    )
    response = http.post("/changes", json=body)
    assert response.status_code == 201, response.text
    change = response.json()
    assert change["at"] == "2026-11-28T09:15:00Z"  # in UTC
    assert (change["service"], change["summary"], change["who"]) == (
        service,
        "Deploy v412",
        "alice",
    )
    assert (change["source"], change["integration"]) == ("api", None)
    assert change["links"] == [{"href": "https://ci.example/runs/412", "text": "run 412"}]
    assert change["details"] == {"sha": "3f9c2a1"}
    assert http.get("/changes", params={"service": service}).json() == [change]


def test_at_defaults_to_now(http: httpx.Client) -> None:
    service = unique("api")
    before = datetime.now(UTC)
    change = http.post("/changes", json=deploy(service)).json()
    at = datetime.fromisoformat(change["at"])
    assert before <= at <= datetime.now(UTC)
    assert change["at"] == change["received_at"]


def test_a_repeat_with_the_same_id_is_stored_once(feed: ApiStack, http: httpx.Client) -> None:
    service = unique("api")
    first = http.post("/changes", json=deploy(service, id="pipeline-812"))
    assert first.status_code == 201, first.text
    assert first.json()["change_id"] == "pipeline-812"
    # The CI job retries (its first answer was lost): the same id, a later time.
    again = http.post(
        "/changes", json=deploy(service, id="pipeline-812", at="2026-11-28T12:00:00Z", who="bob")
    )
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the change as first stored
    assert [c.change_id for c in stored(feed, service)] == ["pipeline-812"]
    # The key is per service; without an id every post is a change of its own.
    other = http.post("/changes", json=deploy(unique("web"), id="pipeline-812"))
    assert other.status_code == 201
    assert http.post("/changes", json=deploy(service)).status_code == 201
    assert http.post("/changes", json=deploy(service)).status_code == 201
    assert len(stored(feed, service)) == 3


def test_the_api_client_says_whether_a_change_is_new(feed: ApiStack) -> None:
    service = unique("api")
    with FirewatchClient(feed.url, feed.secrets().api_token) as client:
        change, new = client.add_change(service, "Deploy v9", "carol", change_id="v9")
        assert new and change["change_id"] == "v9"
        again, new = client.add_change(service, "Deploy v9", "carol", change_id="v9")
        assert not new and again == change
        assert client.changes(service=service) == [change]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403)],
    ids=["no-token", "wrong-token"],
)
def test_changes_need_the_api_token(feed: ApiStack, headers: dict[str, str], status: int) -> None:
    before = stored(feed)
    with httpx.Client(base_url=feed.url, headers=headers, timeout=30) as raw:
        assert raw.post("/changes", json=deploy(unique("api"))).status_code == status
        assert raw.get("/changes").status_code == status
        # Nor is an integration key an API token.
        key = {"Authorization": f"Bearer {feed.key('generic')}"}
        assert raw.post("/changes", json=deploy("api"), headers=key).status_code == 403
    assert stored(feed) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"summary": "Deploy v412", "who": "alice"}, "service"),
        (deploy("api", summary=""), "summary"),
        (deploy("api", summary="   "), "summary"),
        (deploy("api", summary="x" * 1025), "summary"),
        # Over maxLength as sent, as the schema says, even if it would fit once trimmed.
        (deploy("api", summary=" " + "x" * 1024), "summary"),
        (deploy(" " * 196 + "api12"), "service"),  # 201 characters
        ({"service": "api", "summary": "Deploy v412"}, "who"),
        (deploy("api", at="2026-11-28T09:00:00"), "at"),  # no offset: ambiguous
        (deploy("api", at="yesterday"), "at"),
        (deploy("api", at=1767225600), "at"),
        (deploy("api", links=[{"text": "no href"}]), "links.0.href"),
        (deploy("api", links=[{"href": ""}]), "links.0.href"),
        (deploy("api", id=""), "id"),
        (deploy("api", id="x" * 256), "id"),
        (deploy("api", details="sha 3f9c2a1"), "details"),
        (deploy("api\nx"), "service"),
        (deploy("api", when="2026-11-28T09:00:00Z"), "when"),  # a misspelt field
        (deploy("api", source="pagerduty"), "source"),
    ],
)
def test_a_bad_change_is_refused_with_422_naming_the_field(
    feed: ApiStack, http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = stored(feed)
    response = http.post("/changes", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["detail"] == "invalid request"
    assert [e["loc"] for e in answer["errors"]] == [field]
    assert stored(feed) == before


def test_a_body_that_is_not_json_is_refused(feed: ApiStack, http: httpx.Client) -> None:
    before = stored(feed)
    malformed = http.post(
        "/changes", content=b'{"service": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert http.post("/changes", content=b"service=api").status_code == 415
    assert stored(feed) == before


def test_the_list_is_newest_first_and_filtered(http: httpx.Client) -> None:
    service = unique("api")
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    for minutes, name in [(0, "v1"), (30, "v2"), (-60, "v0"), (90, "v3")]:
        at = (t0 + timedelta(minutes=minutes)).isoformat()
        assert http.post("/changes", json=deploy(service, summary=name, at=at)).status_code == 201

    def summaries(**params: Any) -> list[str]:
        response = http.get("/changes", params={"service": service, **params})
        assert response.status_code == 200, response.text
        return [c["summary"] for c in response.json()]

    assert summaries() == ["v3", "v2", "v1", "v0"]
    assert summaries(since="2026-11-28T09:00:00Z") == ["v3", "v2", "v1"]  # inclusive
    assert summaries(since="2026-11-28T10:00:00+01:00") == ["v3", "v2", "v1"]
    assert summaries(since="2026-11-28T09:00:01Z") == ["v3", "v2"]
    assert summaries(since="2026-11-28T09:00:00Z", limit=2) == ["v3", "v2"]
    assert summaries(since="2026-11-29T00:00:00Z") == []
    # curl without --data-urlencode: the offset's '+' arrives as a space.
    raw = http.get(f"/changes?service={service}&since=2026-11-28T10:30:00+01:00")
    assert [c["summary"] for c in raw.json()] == ["v3", "v2"]


@pytest.mark.parametrize(
    "query",
    [
        "since=2026-11-28T09:00:00",
        "since=yesterday",
        "limit=0",
        "limit=1001",
        "service=",
        "servce=api",
        "service=a&service=b",
    ],
)
def test_a_bad_list_query_is_422(http: httpx.Client, query: str) -> None:
    response = http.get(f"/changes?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"].startswith("query.")


def test_the_openapi_document_describes_the_feed(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/changes"]) == {"get", "post"}
    assert set(paths["/changes"]["post"]["responses"]) >= {"200", "201", "401", "403", "422"}
    enqueue = paths["/v2/change/enqueue"]["post"]
    assert set(enqueue["responses"]) >= {"202", "400"}
    assert "422" not in enqueue["responses"]
