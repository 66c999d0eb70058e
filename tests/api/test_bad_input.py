"""Bad input gets a precise 4xx (field path and reason) and starts nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.ids import incident_workflow_id
from tests.api.api_support import ApiEnv, unique

OVER_512_KB = 512 * 1024 + 1


def pd_event(api_env: ApiEnv, key: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": api_env.stack.key("pagerduty"),
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"},
    }
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return event


def am_body(key: str, **alert_changes: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "DiskFull"},
        "annotations": {},
        "startsAt": "2026-01-31T12:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": key,
    }
    alert.update(alert_changes)
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "fw",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [alert],
    }


@pytest.fixture(scope="module")
async def baseline(api_env: ApiEnv) -> AsyncIterator[int]:
    """Every rejected request in this module together started no workflow at all."""
    before = await api_env.settled_count()
    yield before
    assert await api_env.settled_count() == before


def first_error(response: httpx.Response) -> tuple[str, str]:
    body = response.json()
    error = body["errors"][0]
    return error["loc"], error["msg"]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"event_action": "snooze"}, "event_action", "'trigger', 'acknowledge' or 'resolve'"),
        ({"payload__severity": 5}, "payload.severity", "'critical'"),
        ({"payload__summary": ...}, "payload.summary", "Field required"),
        ({"payload__summary": "x" * 1025}, "payload.summary", "at most 1024 characters"),
        ({"payload__timestamp": "yesterday"}, "payload.timestamp", "datetime"),
        ({"payload__timestamp": 1700000000}, "payload.timestamp", "ISO 8601"),
        ({"payload__timestamp": "2026-01-31T12:00:00"}, "payload.timestamp", "timezone"),
        ({"payload__timestamp": "2026-13-31T12:00:00Z"}, "payload.timestamp", "month"),
        ({"dedup_key": "k" * 256}, "dedup_key", "at most 255 characters"),
        ({"payload": ...}, "payload", "required for trigger"),
        ({"links": [{"text": "no href"}]}, "links.0.href", "Field required"),
    ],
)
async def test_pagerduty_invalid_event(
    api_env: ApiEnv,
    http: httpx.AsyncClient,
    baseline: int,
    changes: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    key = unique("bad-pd")
    response = await http.post("/v2/enqueue", json=pd_event(api_env, key, **changes))
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(e.startswith(f"{field}: ") and reason in e for e in body["errors"]), body
    assert await api_env.runs(incident_workflow_id(key, "pagerduty")) == 0


async def test_pagerduty_ack_without_dedup_key(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    event = {"routing_key": api_env.stack.key("pagerduty"), "event_action": "acknowledge"}
    response = await http.post("/v2/enqueue", json=event)
    assert response.status_code == 400
    assert response.json()["errors"] == ["dedup_key: Field required for acknowledge"]


async def test_pagerduty_routing_key(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    key = unique("bad-pd-key")
    missing = await http.post("/v2/enqueue", json=pd_event(api_env, key, routing_key=...))
    assert missing.status_code == 401
    assert missing.json()["status"] == "invalid event"
    unknown = await http.post("/v2/enqueue", json=pd_event(api_env, key, routing_key="f" * 32))
    assert unknown.status_code == 403
    # An Alertmanager token is not a PagerDuty routing key.
    other = pd_event(api_env, key, routing_key=api_env.stack.key("alertmanager"))
    assert (await http.post("/v2/enqueue", json=other)).status_code == 403
    wrong_type = await http.post("/v2/enqueue", json=pd_event(api_env, key, routing_key=42))
    assert wrong_type.status_code == 400
    assert wrong_type.json()["errors"] == ["routing_key: Input should be a valid string"]
    assert await api_env.runs(incident_workflow_id(key, "pagerduty")) == 0


@pytest.mark.parametrize("path", ["/v2/enqueue", "/alerts/alertmanager", "/alerts", "/incidents"])
async def test_malformed_json(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int, path: str
) -> None:
    headers = {"Content-Type": "application/json", **api_env.stack.api_headers()}
    if path != "/incidents":
        headers["Authorization"] = f"Bearer {api_env.stack.key('alertmanager')}"
    response = await http.post(path, content=b'{"routing_key": "x", ', headers=headers)
    assert response.status_code == 400, response.text
    text = json.dumps(response.json())
    assert "malformed JSON" in text


async def test_not_json_content_type(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    key = unique("bad-ct")
    body = json.dumps(pd_event(api_env, key)).encode()
    response = await http.post("/v2/enqueue", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert await api_env.runs(incident_workflow_id(key, "pagerduty")) == 0


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("path", ["/v2/enqueue", "/alerts/alertmanager"])
async def test_oversize_body(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int, path: str, chunked: bool
) -> None:
    key = unique("big")
    event = pd_event(api_env, key)
    event["payload"]["custom_details"] = {"blob": "x" * OVER_512_KB}
    raw = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api_env.stack.key('alertmanager')}",
    }

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    content: Any = stream() if chunked else raw
    response = await http.post(path, content=content, headers=headers)
    assert response.status_code == 413
    assert await api_env.runs(incident_workflow_id(key, "pagerduty")) == 0


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"startsAt": "not a time"}, "alerts.0.startsAt", "datetime"),
        ({"startsAt": "2026-01-31 12:00"}, "alerts.0.startsAt", "timezone"),
        ({"labels": {"alertname": "X", "replicas": 3}}, "alerts.0.labels.replicas", "string"),
        ({"status": "pending"}, "alerts.0.status", "'firing' or 'resolved'"),
        ({"labels": None}, "alerts.0.labels", "dictionary"),
    ],
)
async def test_alertmanager_invalid_alert(
    api_env: ApiEnv,
    http: httpx.AsyncClient,
    baseline: int,
    changes: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    key = unique("bad-am")
    headers = {"Authorization": f"Bearer {api_env.stack.key('alertmanager')}"}
    response = await http.post(
        "/alerts/alertmanager", json=am_body(key, **changes), headers=headers
    )
    assert response.status_code == 422, response.text
    loc, msg = first_error(response)
    assert loc == field and reason in msg, (loc, msg)
    assert await api_env.runs(incident_workflow_id(key, "alertmanager")) == 0


async def test_alertmanager_envelope(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    headers = {"Authorization": f"Bearer {api_env.stack.key('alertmanager')}"}
    body = am_body(unique("bad-am"))
    del body["alerts"]
    response = await http.post("/alerts/alertmanager", json=body, headers=headers)
    assert first_error(response) == ("alerts", "Field required")
    body = {**am_body(unique("bad-am")), "version": "3"}
    response = await http.post("/alerts/alertmanager", json=body, headers=headers)
    assert response.status_code == 422 and first_error(response)[0] == "version"


async def test_alertmanager_auth(api_env: ApiEnv, http: httpx.AsyncClient, baseline: int) -> None:
    key = unique("bad-am-auth")
    body = am_body(key)
    assert (await http.post("/alerts/alertmanager", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await http.post("/alerts/alertmanager", json=body, headers=wrong)).status_code == 403
    # A syntactically bad body with bad credentials is still a credentials problem.
    assert (await http.post("/alerts/alertmanager", json={}, headers=wrong)).status_code == 403
    assert await api_env.runs(incident_workflow_id(key, "alertmanager")) == 0


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"summary": "x" * 1025}, "summary", "at most 1024 characters"),
        ({"summary": "ok", "severity": "urgent"}, "severity", "'P0'"),
        ({"summary": "ok", "sevrity": "P1"}, "sevrity", "Extra inputs"),
        ({"action": "resolve"}, "dedup_key", "required to resolve"),
        ({"severity": "P1"}, "summary", "required to trigger"),
        ({"summary": "ok", "detected_at": "31/01/2026"}, "detected_at", "datetime"),
    ],
)
async def test_generic_invalid(
    api_env: ApiEnv,
    http: httpx.AsyncClient,
    baseline: int,
    body: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    key = unique("bad-generic")
    if "dedup_key" not in field:
        body = {**body, "dedup_key": key}
    headers = {"Authorization": f"Bearer {api_env.stack.key('generic')}"}
    response = await http.post("/alerts", json=body, headers=headers)
    assert response.status_code == 422, response.text
    loc, msg = first_error(response)
    assert loc == field and reason in msg, (loc, msg)
    assert await api_env.runs(incident_workflow_id(key, "generic")) == 0


async def test_incidents_api_needs_its_token(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    body = {"service": "api", "severity": "P1", "summary": "x", "dedup_key": unique("bad-api")}
    assert (await http.post("/incidents", json=body)).status_code == 401
    # An integration key is not the API token.
    wrong = {"Authorization": f"Bearer {api_env.stack.key('generic')}"}
    assert (await http.post("/incidents", json=body, headers=wrong)).status_code == 403
    assert (await http.get("/incidents", headers=wrong)).status_code == 403
    assert (await http.get("/integrations")).status_code == 401
    headers = api_env.stack.api_headers()
    response = await http.post("/incidents", json={**body, "severity": "P9"}, headers=headers)
    assert response.status_code == 422 and first_error(response)[0] == "severity"
    response = await http.get("/incidents", params={"status": "Bogus"}, headers=headers)
    assert response.status_code == 422 and first_error(response)[0] == "query.status"
    assert await api_env.runs(incident_workflow_id(body["dedup_key"], None)) == 0


async def test_unknown_and_repeated_query_parameters(
    api_env: ApiEnv, http: httpx.AsyncClient, baseline: int
) -> None:
    headers = api_env.stack.api_headers()
    typo = await http.get("/incidents", params={"stauts": "Triggered"}, headers=headers)
    assert typo.status_code == 422
    assert first_error(typo) == ("query.stauts", "Unknown query parameter")
    twice = await http.get("/incidents?severity=P1&severity=P2", headers=headers)
    assert twice.status_code == 422
    assert first_error(twice) == ("query.severity", "Given more than once")
