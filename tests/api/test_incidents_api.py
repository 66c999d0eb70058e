"""The incidents API the CLI uses: trigger, list, show, every action, on-call, outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from domain.ids import incident_workflow_id
from domain.incident import IncidentState
from starter.api.context import ApiSettings
from starter.secrets import mask
from tests.api.api_support import ApiEnv, ApiStack, eventually, metric, unique


async def trigger(
    http: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"service": "api", "severity": "P1", "summary": "Checkout is down", **fields}
    response = await http.post("/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    state: dict[str, Any] = response.json()
    assert state["incident_id"].startswith("INC-")
    return state


async def show(
    http: httpx.AsyncClient, headers: dict[str, str], incident_id: str
) -> dict[str, Any] | None:
    response = await http.get(f"/incidents/{incident_id}", headers=headers)
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


async def test_lifecycle_through_the_api(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    service = unique("svc")
    state = await trigger(http, api_headers, service=service, source="cli")
    inc = state["incident_id"]
    assert (state["status"], state["severity"], state["source"]) == ("Triggered", "P1", "cli")

    # Lookups by INC id go through the id store: no waiting for visibility.
    shown = await show(http, api_headers, inc)
    assert shown is not None
    assert shown["incident_id"] == inc and shown["timeline"][0]["kind"] == "opened"

    async def listed() -> list[dict[str, Any]]:
        params = {"service": service, "severity": "P1", "status": "Triggered"}
        response = await http.get("/incidents", params=params, headers=api_headers)
        return [row for row in response.json() if row["incident_id"] == inc]

    assert (await eventually(listed))[0]["workflow_id"] == state["workflow_id"]

    async def act(path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = await http.post(f"/incidents/{inc}/{path}", json=body, headers=api_headers)
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    # Only people on the roster act; anyone else gets 409 with the workflow's reason.
    rejected = await act("acknowledge", {"by": "mallory"}, 409)
    assert rejected == {"detail": "'mallory' is not on the roster", "errors": []}
    assert (await act("acknowledge", {"by": "alice"}))["status"] == "Investigating"
    update = {"by": "alice", "message": "Rolled back 1.42", "status": "Mitigating"}
    assert (await act("updates", update))["status"] == "Mitigating"
    assert (await act("severity", {"by": "alice", "severity": "P0"}))["severity"] == "P0"
    assert "erin" in (await act("responders", {"by": "alice", "person": "erin"}))["responders"]
    escalated = await act("escalate", {"by": "alice", "reason": "need a DBA"})
    assert any(e["kind"] == "escalate" for e in escalated["timeline"])
    resolution = {"by": "alice", "root_cause": "bad deploy", "fix": "rollback"}
    resolved = await act("resolve", resolution)
    assert (resolved["status"], resolved["resolved_by"]) == ("Resolved", "alice")
    again = await act("acknowledge", {"by": "bob"}, 409)
    assert "resolved" in again["detail"]

    # P0 requires a post-mortem; its review can be marked held once the draft exists.
    async def held() -> dict[str, Any] | None:
        body = {"by": "alice", "notes": "five whys done"}
        response = await http.post(
            f"/incidents/{inc}/postmortem/held", json=body, headers=api_headers
        )
        assert response.status_code in (200, 404), response.text
        return response.json() if response.status_code == 200 else None

    review = await eventually(held)
    assert (review["incident_id"], review["held_by"]) == (inc, "alice")

    outbox = (await http.get("/outbox", params={"incident_id": inc}, headers=api_headers)).json()
    kinds = {row["kind"] for row in outbox}
    assert {"page", "acknowledged", "resolution"} <= kinds, kinds

    # Its record reaches /metrics: opened as a P1 of its service, acknowledged, resolved.
    async def counted() -> float:
        return await metric(http, "firewatch_incidents_total", severity="P1", service=service)

    assert await eventually(counted) == 1
    acked = await metric(http, "firewatch_incident_time_to_ack_seconds_count", severity="P1")
    fixed = await metric(http, "firewatch_incident_time_to_resolve_seconds_count", severity="P1")
    quick = await metric(
        http, "firewatch_incident_time_to_resolve_seconds_bucket", severity="P1", le="60.0"
    )
    assert acked >= 1 and fixed >= 1 and quick >= 1  # resolved within a minute
    assert await metric(http, "firewatch_pages_total", channel="outbox", outcome="sent") >= 1


async def test_same_dedup_key_joins(http: httpx.AsyncClient, api_headers: dict[str, str]) -> None:
    key = unique("manual")
    first = await trigger(http, api_headers, dedup_key=key, severity="P3")
    second = await trigger(http, api_headers, dedup_key=key, severity="P3")
    assert first["incident_id"] == second["incident_id"]

    async def counted() -> dict[str, Any] | None:
        state = await show(http, api_headers, first["incident_id"])
        return state if state and state["alert_count"] == 2 else None

    await eventually(counted)
    # P3 has no escalation ladder: escalating is an invalid transition.
    response = await http.post(
        f"/incidents/{first['incident_id']}/escalate", json={"by": "bob"}, headers=api_headers
    )
    assert response.status_code == 409
    assert "no escalation ladder" in response.json()["detail"]


async def test_lookups_work_the_moment_trigger_returns(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    """No sleep, no retry: the id -> run mapping is written before the id is handed out."""
    for n in range(5):
        state = await trigger(
            http, api_headers, service=unique("now"), severity="P2", summary=f"right away {n}"
        )
        inc = state["incident_id"]
        shown = await http.get(f"/incidents/{inc}", headers=api_headers)
        assert shown.status_code == 200, shown.text
        assert (shown.json()["incident_id"], shown.json()["summary"]) == (inc, f"right away {n}")
        ack = await http.post(
            f"/incidents/{inc}/acknowledge", json={"by": "alice"}, headers=api_headers
        )
        assert ack.status_code == 200, ack.text
        assert (ack.json()["incident_id"], ack.json()["status"]) == (inc, "Investigating")


async def test_an_earlier_incident_of_the_same_workflow_keeps_its_run(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    """The same dedup key after resolution opens a new incident in a new run of the same
    workflow id; each INC id still reaches its own run, at once."""
    key = unique("again")
    first = await trigger(http, api_headers, dedup_key=key, severity="P2", summary="first")
    resolution = {"by": "alice", "root_cause": "full disk", "fix": "rotated logs"}
    response = await http.post(
        f"/incidents/{first['incident_id']}/resolve", json=resolution, headers=api_headers
    )
    assert response.status_code == 200, response.text
    handle = api_env.client.get_workflow_handle(first["workflow_id"])

    async def completed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await eventually(completed)
    second = await trigger(http, api_headers, dedup_key=key, severity="P2", summary="second")
    assert second["workflow_id"] == first["workflow_id"]
    assert second["incident_id"] != first["incident_id"]

    old = await show(http, api_headers, first["incident_id"])
    new = await show(http, api_headers, second["incident_id"])
    assert old is not None and new is not None
    assert (old["incident_id"], old["summary"], old["status"]) == (
        first["incident_id"],
        "first",
        "Resolved",
    )
    assert (new["incident_id"], new["summary"], new["status"]) == (
        second["incident_id"],
        "second",
        "Triggered",
    )
    # Acting on the closed one never touches the new one.
    stale = await http.post(
        f"/incidents/{first['incident_id']}/acknowledge", json={"by": "bob"}, headers=api_headers
    )
    assert stale.status_code == 409, stale.text
    ack = await http.post(
        f"/incidents/{second['incident_id']}/acknowledge", json={"by": "bob"}, headers=api_headers
    )
    assert ack.status_code == 200 and ack.json()["assignee"] == "bob"


async def test_list_is_newest_first_with_summaries(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    service = unique("listing")
    opened = [
        await trigger(http, api_headers, service=service, severity=severity, summary=summary)
        for severity, summary in (
            ("P3", "disk 80% on db-1"),
            ("P2", "queue backlog"),
            ("P2", "cache misses"),
            ("P3", "certificate expires in 20 days"),
        )
    ]
    a, b, c, d = (s["incident_id"] for s in opened)
    # C closes before A: Temporal's own order (open ones first, then closed ones by
    # closing time: D B A C) differs from the opening order at every position.
    for inc in (c, a):
        resolution = {"by": "alice", "root_cause": "noise", "fix": "none needed"}
        response = await http.post(
            f"/incidents/{inc}/resolve", json=resolution, headers=api_headers
        )
        assert response.status_code == 200, response.text
    statuses = {a: "Resolved", b: "Triggered", c: "Resolved", d: "Triggered"}

    async def listed(**params: Any) -> list[dict[str, Any]]:
        response = await http.get(
            "/incidents", params={"service": service, **params}, headers=api_headers
        )
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    async def settled() -> list[dict[str, Any]] | None:  # visibility lags a moment
        rows = await listed()
        return rows if {r["incident_id"]: r["status"] for r in rows} == statuses else None

    rows = await eventually(settled)
    assert [(r["incident_id"], r["summary"]) for r in rows] == [
        (d, "certificate expires in 20 days"),
        (c, "cache misses"),
        (b, "queue backlog"),
        (a, "disk 80% on db-1"),
    ]
    times = [r["opened_at"] for r in rows]
    assert times == sorted(times, reverse=True)

    def ids(rows: list[dict[str, Any]]) -> list[str]:
        return [r["incident_id"] for r in rows]

    assert ids(await listed(sort="-opened")) == [d, c, b, a]
    assert ids(await listed(sort="opened")) == [a, b, c, d]
    assert ids(await listed(sort="severity")) == [c, b, d, a]  # P2s, then P3s, newest first
    assert ids(await listed(sort="status")) == [d, b, c, a]  # Triggered, then Resolved
    assert ids(await listed(limit=2)) == [d, c]
    assert ids(await listed(sort="opened", limit=3)) == [a, b, c]
    # Filters still apply, in every order and with a limit smaller than the matches.
    assert ids(await listed(status="Resolved")) == [c, a]
    assert ids(await listed(status="Resolved", limit=2)) == [c, a]
    assert ids(await listed(status="Triggered", sort="opened", limit=1)) == [b]
    assert ids(await listed(severity="P3", sort="status")) == [d, a]
    assert ids(await listed(status="Triggered", severity="P2")) == [b]


async def test_bad_sort_is_a_clear_422(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    for bad in ("newest", "opened_at", ""):
        response = await http.get("/incidents", params={"sort": bad}, headers=api_headers)
        assert response.status_code == 422, response.text
        assert response.json() == {
            "detail": "invalid request",
            "errors": [
                {
                    "loc": "query.sort",
                    "msg": "Input should be '-opened', 'opened', 'severity' or 'status'",
                    "type": "literal_error",
                }
            ],
        }


async def test_escalate_and_add_responder_name_who_asks(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    """Both page or message someone: without ``by`` they are refused and change nothing, as
    acknowledge, update, severity and resolve are."""
    state = await trigger(http, api_headers, service=unique("who"), severity="P1", summary="who")
    inc = state["incident_id"]
    for action, body in (("escalate", {"reason": "x"}), ("responders", {"person": "frank"})):
        response = await http.post(f"/incidents/{inc}/{action}", json=body, headers=api_headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"loc": "by", "msg": "Field required", "type": "missing"}
        ]
    shown = (await http.get(f"/incidents/{inc}", headers=api_headers)).json()
    assert shown["responders"] == [] and "frank" not in str(shown["timeline"])
    assert not [e for e in shown["timeline"] if e["kind"] == "escalate"]


async def test_a_misspelt_field_is_named_and_nothing_changes(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    state = await trigger(http, api_headers, service=unique("typo"), severity="P2", summary="typo")
    inc = state["incident_id"]
    for action, body in (
        ("ticket", {"by": "carol", "user_impact": "slow", "busines_impact": "lost sales"}),
        ("updates", {"by": "carol", "message": "looking", "next_step": "restart"}),
        ("acknowledge", {"by": "carol", "note": "on it"}),
    ):
        response = await http.post(f"/incidents/{inc}/{action}", json=body, headers=api_headers)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert (error["type"], error["loc"]) == ("extra_forbidden", list(body)[-1]), error
    shown = (await http.get(f"/incidents/{inc}", headers=api_headers)).json()
    assert shown["ticket"]["user_impact"] is None and shown["status"] == "Triggered"


async def test_unknown_incidents_are_404(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    for incident_id in ("INC-2001-01-01-999", "not-an-id", "INC-2001-01-01-999'%20OR%20'1'='1"):
        response = await http.get(f"/incidents/{incident_id}", headers=api_headers)
        assert response.status_code == 404, response.text
        response = await http.post(
            f"/incidents/{incident_id}/acknowledge", json={"by": "alice"}, headers=api_headers
        )
        assert response.status_code == 404


async def test_oncall_and_integrations(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    oncall = (await http.get("/oncall", headers=api_headers)).json()
    roles = {entry["role"]: entry for entry in oncall["roles"]}
    assert list(roles) == ["primary", "secondary", "team_lead", "engineering_manager"]
    assert roles["team_lead"]["name"] == "erin" and roles["primary"]["next_handoff_at"]

    masked = (await http.get("/integrations", headers=api_headers)).json()
    rows = {row["name"]: row for row in masked["integrations"]}
    assert set(rows) >= {"pagerduty", "alertmanager", "grafana", "generic"}
    secrets = api_env.stack.secrets()
    pd_key = api_env.stack.key("pagerduty")
    assert rows["pagerduty"]["key"] == mask(pd_key) and pd_key not in str(masked)
    assert rows["pagerduty"]["url"] == f"{api_env.url}/v2/enqueue"
    assert rows["alertmanager"]["url"].endswith("/alerts/alertmanager")
    assert secrets.api_token not in str(masked)

    shown = await http.get("/integrations", params={"show_secrets": "true"}, headers=api_headers)
    rows = {row["name"]: row for row in shown.json()["integrations"]}
    assert rows["pagerduty"]["key"] == pd_key and len(pd_key) == 32
    grafana = secrets.for_integration("grafana")
    assert grafana is not None and rows["grafana"]["hmac_secret"] == grafana.hmac_secret


async def test_health_and_metrics(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    assert (await http.get("/docs")).status_code == 200
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/v2/enqueue", "/alerts/alertmanager", "/alerts/grafana", "/alerts"} <= set(paths)
    await trigger(http, api_headers, severity="P2", service=unique("health"))

    async def healthy() -> dict[str, Any] | None:
        response = await http.get("/health/detailed")
        body: dict[str, Any] = response.json()
        open_p2 = body["incidents"]["open_by_severity"].get("P2", 0)
        return body if response.status_code == 200 and open_p2 >= 1 else None

    report = await eventually(healthy)
    assert report["temporal"]["reachable"] and report["worker"]["polling"]
    assert report["worker"]["task_queue"] == api_env.stack.task_queue
    assert report["incidents"]["open_total"] >= 1

    assert await metric(http, "firewatch_incidents_opened_total", source="api") >= 1
    latency = await metric(
        http, "firewatch_http_request_duration_seconds_count", route="/health", status="200"
    )
    assert latency >= 1


async def test_overload_and_no_worker(api_env: ApiEnv, tmp_path: Path) -> None:
    """One request in flight at most, and no worker: the next ones are turned away."""
    stack = ApiStack(
        target=api_env.stack.target,
        namespace=api_env.stack.namespace,
        policy=api_env.stack.policy,
        data=tmp_path,
        with_worker=False,
        settings=ApiSettings(
            task_queue=unique("nobody-polls"), max_in_flight=1, worker_timeout_s=3, retry_after_s=2
        ),
    )
    await asyncio.to_thread(stack.start)
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
            # Recorded durably, but no worker gives it an id: 202 with the workflow id.
            body = {"service": "api", "severity": "P2", "summary": "slow", "dedup_key": unique("k")}
            slow = asyncio.create_task(
                http.post("/incidents", json=body, headers=stack.api_headers())
            )
            await asyncio.sleep(0.5)
            event = {"routing_key": stack.key("pagerduty"), "event_action": "trigger"}
            busy = await http.post("/v2/enqueue", json=event)
            assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
            assert busy.json()["status"] == "throttle event"
            # Alertmanager only retries 5xx, so its webhook is told 503 instead.
            token = {"Authorization": f"Bearer {stack.key('alertmanager')}"}
            webhook = await http.post("/alerts/alertmanager", json={}, headers=token)
            assert webhook.status_code == 503 and webhook.headers["Retry-After"] == "2"
            assert (await http.get("/health")).status_code == 200  # never throttled
            pending = await slow
            assert pending.status_code == 202, pending.text
            assert pending.json()["workflow_id"] == incident_workflow_id(body["dedup_key"], None)
            assert await api_env.runs(pending.json()["workflow_id"]) == 1
            throttled = await metric(
                http, "firewatch_alerts_received_total", source="pagerduty", outcome="throttled"
            )
            assert throttled == 1
    finally:
        await asyncio.to_thread(stack.stop)


async def test_the_ticket_says_how_the_incident_was_detected(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    """A monitoring tool on the generic webhook: source ``generic``, detected by Monitoring;
    opened by hand through the API: Internal."""
    key = unique("generic-detect")
    hook = {"Authorization": f"Bearer {api_env.stack.key('generic')}"}
    alert = {"summary": "Queue depth over 10k", "severity": "P3", "dedup_key": key}
    assert (await http.post("/alerts", json=alert, headers=hook)).status_code == 202

    async def opened() -> IncidentState | None:
        found = await api_env.state(incident_workflow_id(key, "generic"))
        return found if found is not None and found.incident_id else None

    state = await eventually(opened)
    assert state.source == "generic"
    by_hand = await trigger(http, api_headers, severity="P3", dedup_key=unique("by-hand"))
    assert by_hand["source"] == "api"

    async def detection(incident_id: str) -> str | None:
        response = await http.get(f"/incidents/{incident_id}/ticket", headers=api_headers)
        if response.status_code != 200:
            return None
        lines = response.json()["markdown"].splitlines()
        return next(line for line in lines if line.startswith("- **Detection Method**"))

    assert await eventually(lambda: detection(state.incident_id or "")) == (
        "- **Detection Method**: Monitoring"
    )
    assert await eventually(lambda: detection(by_hand["incident_id"])) == (
        "- **Detection Method**: Internal"
    )
