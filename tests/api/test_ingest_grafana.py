"""POST /alerts/grafana: Grafana unified alerting's webhook (version "1").

Grafana is not installable here; the bodies follow its webhook format: Alertmanager's
shape plus orgId, title, message, state, and per alert silenceURL, dashboardURL,
panelURL, values and imageURL. Signatures are computed as Grafana computes them
(grafana/alerting http/hmac.go): hex HMAC-SHA256 over "<unix seconds>:" + body when the
contact point names a timestamp header, over the body alone otherwise; the latter is
refused, since it could be replayed for ever.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain.ids import incident_workflow_id
from domain.incident import IncidentState, Status
from tests.api.api_support import ApiEnv, eventually, unique


def grafana_body(fingerprint: str, status: str = "firing") -> dict[str, object]:
    starts = datetime.now(UTC) - timedelta(minutes=3)
    ends = datetime.now(UTC) if status == "resolved" else datetime(1, 1, 1, tzinfo=UTC)
    labels = {"alertname": "CheckoutErrors", "grafana_folder": "Web", "severity": "error"}
    return {
        "receiver": "firewatch",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "Checkout error rate 7%"},
                "startsAt": starts.isoformat().replace("+00:00", "Z"),
                "endsAt": ends.isoformat().replace("+00:00", "Z"),
                "generatorURL": "http://grafana.example/alerting/grafana/abc/view",
                "fingerprint": fingerprint,
                "silenceURL": "http://grafana.example/alerting/silence/new",
                "dashboardURL": "http://grafana.example/d/checkout",
                "panelURL": "http://grafana.example/d/checkout?viewPanel=2",
                "values": {"B": 7.1, "C": 1},
                "valueString": "[ var='B' labels={} value=7.1 ]",
            }
        ],
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "Checkout error rate 7%"},
        "externalURL": "http://grafana.example/",
        "version": "1",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] CheckoutErrors Web",
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**\n\nValue: B=7.1",
    }


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    signed = f"{timestamp}:".encode() + body if timestamp else body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def hmac_secret(api_env: ApiEnv) -> str:
    secret = api_env.stack.secrets().for_integration("grafana")
    assert secret is not None and secret.hmac_secret is not None
    return secret.hmac_secret


async def opened(api_env: ApiEnv, workflow_id: str, **expect: object) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id) if await api_env.runs(workflow_id) else None
        if state is None or state.incident_id is None:
            return None
        return state if all(getattr(state, k) == v for k, v in expect.items()) else None

    return await eventually(probe)


async def test_bearer_firing_then_resolved(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    fp = unique("gf")
    headers = {"Authorization": f"Bearer {api_env.stack.key('grafana')}"}
    response = await http.post("/alerts/grafana", json=grafana_body(fp), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["alerts"] == [{"dedup_key": fp, "status": "firing", "outcome": "opened"}]
    wid = incident_workflow_id(fp, "grafana")
    state = await opened(api_env, wid)
    assert (state.severity, state.source, state.service) == ("P2", "grafana", "api")
    alert = state.alerts[0]
    assert alert.details["dashboard_url"] == "http://grafana.example/d/checkout"
    assert alert.details["values"] == {"B": 7.1, "C": 1.0}
    assert (alert.details["org_id"], alert.details["state"]) == (1, "alerting")
    assert "http://grafana.example/d/checkout?viewPanel=2" in alert.links
    assert alert.group_key == '{}:{alertname="CheckoutErrors"}'

    # Grafana re-sends while the alert keeps firing: joined, not a new incident.
    again = await http.post("/alerts/grafana", json=grafana_body(fp), headers=headers)
    assert again.json()["alerts"][0]["outcome"] == "joined"

    resolved = await http.post(
        "/alerts/grafana", json=grafana_body(fp, "resolved"), headers=headers
    )
    assert resolved.json()["alerts"][0]["outcome"] == "resolved"
    state = await opened(api_env, wid, status=Status.RESOLVED)
    assert state.resolved_by == "grafana" and state.alert_count == 2
    assert await api_env.runs(wid) == 1


@pytest.mark.parametrize(
    ("signature_header", "timestamp_header", "age_s"),
    [
        # The documented names; a signature made a moment ago.
        ("X-Grafana-Alerting-Signature", "X-Grafana-Alerting-Signature-Timestamp", 0),
        # Grafana's default when the header field is left empty; the other timestamp name.
        ("X-Grafana-Alert-Signature", "X-Grafana-Alerting-Timestamp", 0),
        # Inside the 5-minute window either way (a slow retry, a clock a little ahead).
        ("X-Grafana-Alerting-Signature", "X-Grafana-Alerting-Signature-Timestamp", 240),
        ("X-Grafana-Alerting-Signature", "X-Grafana-Alerting-Signature-Timestamp", -240),
    ],
)
async def test_hmac_signature_with_a_fresh_timestamp_is_enough(
    api_env: ApiEnv,
    http: httpx.AsyncClient,
    signature_header: str,
    timestamp_header: str,
    age_s: int,
) -> None:
    fp = unique("gf-hmac")
    body = json.dumps(grafana_body(fp)).encode()
    timestamp = str(int(time.time()) - age_s)
    headers = {
        "Content-Type": "application/json",
        timestamp_header: timestamp,
        signature_header: sign(hmac_secret(api_env), body, timestamp),
    }
    response = await http.post("/alerts/grafana", content=body, headers=headers)
    assert response.status_code == 202, response.text
    await opened(api_env, incident_workflow_id(fp, "grafana"))


async def test_signature_without_a_fresh_timestamp_is_refused(
    api_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    """401 naming the reason, with or without a good token beside it; nothing starts."""
    fp = unique("gf-replay")
    body = json.dumps(grafana_body(fp)).encode()
    secret = hmac_secret(api_env)
    now = int(time.time())
    token = {"Authorization": f"Bearer {api_env.stack.key('grafana')}"}
    ts = "X-Grafana-Alerting-Signature-Timestamp"
    cases: list[tuple[dict[str, str], str]] = [
        # Signed over the body alone (no timestamp header configured): replayable.
        ({"X-Grafana-Alerting-Signature": sign(secret, body)}, "no timestamp"),
        ({**token, "X-Grafana-Alerting-Signature": sign(secret, body)}, "no timestamp"),
        (
            {ts: "", "X-Grafana-Alerting-Signature": sign(secret, body)},
            "no timestamp",
        ),
        # Stale: signed more than 5 minutes ago (a captured request, replayed).
        (
            {
                ts: str(now - 301),
                "X-Grafana-Alerting-Signature": sign(secret, body, str(now - 301)),
            },
            "stale",
        ),
        (
            {
                **token,
                ts: str(now - 3600),
                "X-Grafana-Alerting-Signature": sign(secret, body, str(now - 3600)),
            },
            "stale",
        ),
        # Too far ahead.
        (
            {
                ts: str(now + 900),
                "X-Grafana-Alerting-Signature": sign(secret, body, str(now + 900)),
            },
            "in the future",
        ),
        # Not Unix seconds.
        (
            {ts: "2026-01-31T12:00:00Z", "X-Grafana-Alerting-Signature": sign(secret, body)},
            "Unix seconds",
        ),
        ({ts: "nan", "X-Grafana-Alerting-Signature": sign(secret, body)}, "Unix seconds"),
    ]
    for headers, reason in cases:
        response = await http.post(
            "/alerts/grafana",
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )
        assert response.status_code == 401, (headers.keys(), response.text)
        detail = response.json()["detail"]
        assert detail.startswith("Grafana HMAC signature refused: ") and reason in detail, detail
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await api_env.runs(incident_workflow_id(fp, "grafana")) == 0


async def test_a_fresh_timestamp_does_not_revive_a_body_only_signature(
    api_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    """A captured body-only signature with a new timestamp header added: the signature
    does not cover that timestamp, so it is wrong (403)."""
    fp = unique("gf-revive")
    body = json.dumps(grafana_body(fp)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Grafana-Alerting-Signature-Timestamp": str(int(time.time())),
        "X-Grafana-Alerting-Signature": sign(hmac_secret(api_env), body),
    }
    response = await http.post("/alerts/grafana", content=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "wrong Grafana HMAC signature"
    assert await api_env.runs(incident_workflow_id(fp, "grafana")) == 0


async def test_bad_credentials_start_nothing(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    fp = unique("gf-bad")
    body = json.dumps(grafana_body(fp)).encode()
    token = {"Authorization": f"Bearer {api_env.stack.key('grafana')}"}
    json_type = {"Content-Type": "application/json"}
    now = str(int(time.time()))
    cases: list[tuple[dict[str, str], int]] = [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 403),
        # A token of another integration is not a Grafana token.
        ({"Authorization": f"Bearer {api_env.stack.key('alertmanager')}"}, 403),
        (
            {
                "X-Grafana-Alerting-Signature-Timestamp": now,
                "X-Grafana-Alerting-Signature": "0" * 64,
            },
            403,
        ),
        (
            {
                **token,
                "X-Grafana-Alerting-Signature-Timestamp": now,
                "X-Grafana-Alerting-Signature": sign("wrong", body, now),
            },
            403,
        ),
        # Signed by the right secret over another body.
        (
            {
                "X-Grafana-Alerting-Signature-Timestamp": now,
                "X-Grafana-Alerting-Signature": sign(hmac_secret(api_env), b"{}", now),
            },
            403,
        ),
    ]
    for headers, status in cases:
        response = await http.post(
            "/alerts/grafana", content=body, headers={**json_type, **headers}
        )
        assert response.status_code == status, (headers.keys(), response.text)
        assert response.json()["detail"]
    assert await api_env.runs(incident_workflow_id(fp, "grafana")) == 0


async def test_versions_are_not_interchangeable(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    fp = unique("gf-version")
    grafana = {"Authorization": f"Bearer {api_env.stack.key('grafana')}"}
    body = {**grafana_body(fp), "version": "4"}
    response = await http.post("/alerts/grafana", json=body, headers=grafana)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "version"
    alertmanager = {"Authorization": f"Bearer {api_env.stack.key('alertmanager')}"}
    response = await http.post("/alerts/alertmanager", json=grafana_body(fp), headers=alertmanager)
    assert response.status_code == 422
    assert await api_env.runs(incident_workflow_id(fp, "grafana")) == 0
    assert await api_env.runs(incident_workflow_id(fp, "alertmanager")) == 0
