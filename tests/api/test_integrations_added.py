"""Integrations added at run time: `firewatch integrations add/list/remove` against the real
API, then real senders (pdpyras, Grafana-signed and generic webhooks) using the new keys.

The routing key selects the service, as in PagerDuty: an event sent with the new key opens
an incident of the new service. Bad input is refused with a clear reason and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from typing import Any, get_args

import httpx
import pdpyras  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from domain.ids import incident_workflow_id
from domain.incident import IncidentState, Status
from domain.policy import IntegrationKind, Policy
from domain.policy_file import PolicyError, parse_policy
from starter import cli
from storage.database import Database, sqlite_url
from storage.schema import added_integrations, state_versions
from tests.api.api_support import ApiEnv, eventually, metric, unique
from tests.api.test_ingest_grafana import grafana_body
from tests.conftest import DEFAULT_POLICY_PATH


def _stored(api_env: ApiEnv) -> list[tuple[object, ...]]:
    """The added integrations as the database holds them, and the change counter."""
    with Database.open(sqlite_url(api_env.stack.data)).read() as conn:
        rows = conn.execute(select(added_integrations).order_by("name")).all()
        counter = conn.execute(select(state_versions)).all()
    return [tuple(r) for r in rows] + [tuple(c) for c in counter]


async def firewatch(api_env: ApiEnv, *args: str) -> Result:
    """The CLI, as a user runs it, against the test API (in a thread: it blocks)."""
    env = {
        "FIREWATCH_API_URL": api_env.url,
        "FIREWATCH_API_TOKEN": api_env.stack.secrets().api_token,
        "FIREWATCH_USER": None,
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def one_error(result: Result) -> str:
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def pd_session(api_env: ApiEnv, key: str) -> Any:
    session = pdpyras.EventsAPISession(key)
    session.url = api_env.url
    return session


async def state_when(
    api_env: ApiEnv, workflow_id: str, ready: Any = lambda s: s.incident_id
) -> IncidentState:
    async def probe() -> IncidentState | None:
        state = await api_env.state(workflow_id) if await api_env.runs(workflow_id) else None
        return state if state is not None and ready(state) else None

    return await eventually(probe)


async def listed(api_env: ApiEnv, show_secrets: bool = False) -> dict[str, dict[str, Any]]:
    args = ["integrations", "list", "--json"] + (["--show-secrets"] if show_secrets else [])
    result = await firewatch(api_env, *args)
    assert result.exit_code == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["integrations"]}


async def test_added_key_opens_incidents_for_its_service(api_env: ApiEnv) -> None:
    service = unique("db")
    result = await firewatch(
        api_env, "integrations", "add", "--kind", "pagerduty", "--service", service
    )
    assert result.exit_code == 0, result.stderr
    name = f"pagerduty-{service}"
    out = result.stdout.splitlines()
    assert out[:3] == [
        f"Added {name} (pagerduty) for service {service}",
        f"  url          {api_env.url}/v2/enqueue",
        "  auth         routing_key in the event body",
    ]
    match = re.fullmatch(r"  key          ([0-9a-f]{32})", out[3])
    assert match is not None and len(out) == 4, out
    key = match.group(1)

    # The routing key selects the integration, and with it the service.
    session = pd_session(api_env, key)
    dedup = unique("replica-lag")
    assert (
        await asyncio.to_thread(
            session.trigger, "Replica lag 40 s", "db-07", dedup_key=dedup, severity="error"
        )
        == dedup
    )
    wid = incident_workflow_id(dedup, name)
    state = await state_when(api_env, wid)
    assert (state.service, state.severity, state.source) == (service, "P2", "pagerduty")
    assert state.alerts[0].integration == name
    # The same dedup key under the policy's own key is another integration's incident.
    assert await api_env.runs(incident_workflow_id(dedup, "pagerduty")) == 0

    # Its acknowledge events acknowledge in its name.
    await asyncio.to_thread(session.acknowledge, dedup)
    acked = await state_when(api_env, wid, lambda s: s.acknowledged_at)
    assert (acked.status, acked.acknowledged_by) == (Status.INVESTIGATING, name)

    masked = await listed(api_env)
    row = masked[name]
    assert (row["kind"], row["service"], row["origin"]) == ("pagerduty", service, "added")
    assert row["key"] != key and row["key"].startswith(key[:4]) and row["masked"] is True
    assert masked["pagerduty"]["origin"] == "policy"
    assert (await listed(api_env, show_secrets=True))[name]["key"] == key
    table = await firewatch(api_env, "integrations")
    assert table.stdout.splitlines()[0].split() == [
        "NAME",
        "KIND",
        "SERVICE",
        "URL",
        "KEY",
        "ORIGIN",
    ]
    assert any(
        line.startswith(name) and line.endswith("added") for line in table.stdout.splitlines()
    )


async def test_an_integration_can_ignore_acknowledge_events(
    api_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    name = unique("pd-noack")
    result = await firewatch(
        api_env,
        "integrations",
        "add",
        "--kind",
        "pagerduty",
        "--service",
        "batch",
        "--name",
        name,
        "--ignore-acks",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert (row["name"], row["acknowledge_events"], row["service"]) == (name, False, "batch")
    key = row["key"]

    dedup = unique("nightly-job")
    trigger = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {"summary": "Nightly job failed", "source": "cron-2", "severity": "error"},
    }
    assert (await http.post("/v2/enqueue", json=trigger)).status_code == 202
    wid = incident_workflow_id(dedup, name)
    await state_when(api_env, wid)
    ignored = await metric(
        http, "firewatch_alerts_received_total", source="pagerduty", outcome="ignored"
    )
    ack = {"routing_key": key, "event_action": "acknowledge", "dedup_key": dedup}
    response = await http.post("/v2/enqueue", json=ack)
    assert response.status_code == 202, response.text
    assert response.json()["dedup_key"] == dedup
    assert (
        await metric(http, "firewatch_alerts_received_total", source="pagerduty", outcome="ignored")
        == ignored + 1
    )
    # A query sees every signal Temporal accepted before it: no wait needed to know that
    # nothing reached the incident.
    state = await api_env.state(wid)
    assert state is not None
    assert (state.status, state.acknowledged_at, state.acknowledged_by) == (
        Status.TRIGGERED,
        None,
        None,
    )
    # Resolve events still resolve it (auto_resolve is a separate setting).
    resolve = {"routing_key": key, "event_action": "resolve", "dedup_key": dedup}
    assert (await http.post("/v2/enqueue", json=resolve)).status_code == 202
    resolved = await state_when(api_env, wid, lambda s: s.status == Status.RESOLVED)
    assert resolved.resolved_by == name


async def test_added_grafana_and_generic_keys(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    service = unique("web")
    response = await http.post(
        "/integrations", json={"kind": "grafana", "service": service}, headers=api_headers
    )
    assert response.status_code == 201, response.text
    grafana = response.json()
    assert (grafana["name"], grafana["origin"], grafana["masked"]) == (
        f"grafana-{service}",
        "added",
        False,
    )
    fp = unique("gf-added")
    body = json.dumps(grafana_body(fp)).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(
        grafana["hmac_secret"].encode(), f"{timestamp}:".encode() + body, hashlib.sha256
    ).hexdigest()
    signed = await http.post(
        "/alerts/grafana",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Grafana-Alerting-Signature-Timestamp": timestamp,
            "X-Grafana-Alerting-Signature": signature,
        },
    )
    assert signed.status_code == 202, signed.text
    state = await state_when(api_env, incident_workflow_id(fp, grafana["name"]))
    assert (state.service, state.source) == (service, "grafana")

    generic = (
        await http.post(
            "/integrations",
            json={"kind": "generic", "service": service, "name": unique("gen")},
            headers=api_headers,
        )
    ).json()
    dedup = unique("generic-added")
    alert = await http.post(
        "/alerts",
        json={"summary": "Cache miss rate 60%", "severity": "P3", "dedup_key": dedup},
        headers={"Authorization": f"Bearer {generic['key']}"},
    )
    assert alert.status_code == 202, alert.text
    state = await state_when(api_env, incident_workflow_id(dedup, generic["name"]))
    assert (state.service, state.severity) == (service, "P3")


async def test_remove_revokes_the_key(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    name = unique("gen-rm")
    added = await firewatch(
        api_env, "integrations", "add", "--kind", "generic", "--service", "ops", "--name", name,
        "--json",
    )  # fmt: skip
    key = json.loads(added.stdout)["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    body = {"summary": "Disk 95%", "severity": "P3", "dedup_key": unique("rm")}
    assert (await http.post("/alerts", json=body, headers=bearer)).status_code == 202

    removed = await firewatch(api_env, "integrations", "remove", name)
    assert (removed.exit_code, removed.stdout) == (0, f"Removed {name}: its key no longer works\n")
    after = await http.post("/alerts", json={**body, "dedup_key": unique("rm")}, headers=bearer)
    assert after.status_code == 403, after.text
    assert name not in await listed(api_env)
    assert not any(key in str(row) for row in _stored(api_env))  # the key is gone with it

    again = await firewatch(api_env, "integrations", "remove", name)
    assert one_error(again) == f"firewatch: no added integration '{name}' (HTTP 404)"
    policy = await firewatch(api_env, "integrations", "remove", "pagerduty")
    assert one_error(policy) == (
        "firewatch: integration 'pagerduty' is defined in the policy file; remove it there"
        " (HTTP 409)"
    )
    assert "pagerduty" in await listed(api_env)


async def test_bad_input_is_refused_and_changes_nothing(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    taken = unique("pd-taken")
    first = await firewatch(
        api_env, "integrations", "add", "--kind", "pagerduty", "--service", "db", "--name", taken
    )
    assert first.exit_code == 0, first.stderr
    before_rows = _stored(api_env)
    before_list = await listed(api_env, show_secrets=True)

    # Caught by the CLI before any request.
    unknown_kind = await firewatch(
        api_env, "integrations", "add", "--kind", "nagios", "--service", "db"
    )
    assert unknown_kind.exit_code == 2
    assert one_error(unknown_kind) == (
        "firewatch: --kind must be one of pagerduty, alertmanager, grafana, generic, not 'nagios'"
    )
    no_service = await firewatch(api_env, "integrations", "add", "--kind", "generic")
    assert no_service.exit_code == 2 and "--service" in one_error(no_service)
    ack_flag = await firewatch(
        api_env, "integrations", "add", "--kind", "generic", "--service", "db", "--ignore-acks"
    )
    assert one_error(ack_flag) == "firewatch: --ignore-acks is for --kind pagerduty only"

    # Refused by the API, with the reason.
    duplicate = await firewatch(
        api_env, "integrations", "add", "--kind", "generic", "--service", "x", "--name", taken
    )
    assert duplicate.exit_code == 1
    assert one_error(duplicate) == (
        f"firewatch: integration '{taken}' exists already; pick another name (HTTP 409)"
    )
    policy_name = await firewatch(
        api_env, "integrations", "add", "--kind", "pagerduty", "--service", "x", "--name", "pd-db"
    )
    assert one_error(policy_name) == (
        "firewatch: integration 'pd-db' is defined in the policy file; pick another name (HTTP 409)"
    )
    bad_name = await firewatch(
        api_env, "integrations", "add", "--kind", "generic", "--service", "x", "--name", "Bad Name"
    )
    assert one_error(bad_name) == (
        "firewatch: invalid request: name: String should match pattern"
        " '^[a-z0-9][a-z0-9_-]*$' (HTTP 422)"
    )

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"kind": "nagios", "service": "db"}, "kind", "'pagerduty', 'alertmanager'"),
        ({"kind": "generic", "service": "db", "name": "direct"}, "name", "is reserved"),
        (
            {"kind": "generic", "service": "db", "acknowledge_events": False},
            "acknowledge_events",
            "applies to pagerduty integrations only",
        ),
        ({"kind": "generic", "service": ""}, "service", "at least 1 character"),
        ({"kind": "generic", "service": "db\n"}, "service", "plain text"),
        ({"kind": "generic", "service": "!!!"}, "name", "give one"),
        ({"kind": "generic", "service": "db", "colour": "red"}, "colour", "Extra inputs"),
        ({"kind": "generic", "service": "db", "default_severity": "P9"}, "default_severity", "P0"),
    ]
    for body, loc, reason in cases:
        response = await http.post("/integrations", json=body, headers=api_headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["errors"][0]
        assert error["loc"] == loc and reason in error["msg"], (body, error)

    new = {"kind": "generic", "service": "db", "name": unique("nope")}
    assert (await http.post("/integrations", json=new)).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert (await http.post("/integrations", json=new, headers=wrong)).status_code == 403
    assert (await http.delete(f"/integrations/{taken}", headers=wrong)).status_code == 403

    assert _stored(api_env) == before_rows
    assert await listed(api_env, show_secrets=True) == before_list


def test_cli_kinds_match_the_domain() -> None:
    assert get_args(IntegrationKind) == cli.INTEGRATION_KINDS


@pytest.mark.parametrize(
    ("kind", "service", "expected"),
    [
        ("pagerduty", "db", "pagerduty-db"),
        ("generic", "Checkout API", "generic-checkout-api"),
        ("grafana", "third_party.payments", "grafana-third_party-payments"),
        ("generic", "!!!", None),
    ],
)
def test_default_names(kind: str, service: str, expected: str | None) -> None:
    from starter.api.integrations import default_name

    assert default_name(kind, service) == expected


def test_acknowledge_events_in_the_policy_file() -> None:
    """The setting is read from the policy file and validated like the other fields."""
    text = DEFAULT_POLICY_PATH.read_text()
    base = "  - {name: pagerduty, kind: pagerduty, service: api}"
    assert base in text

    def parsed(line: str) -> Policy:
        return parse_policy(text.replace(base, line), "my-policy.yaml")

    off = parsed("  - {name: pagerduty, kind: pagerduty, service: api, acknowledge_events: false}")
    pagerduty, generic = off.integration("pagerduty"), parsed(base).integration("generic")
    assert pagerduty is not None and pagerduty.acknowledge_events is False
    assert generic is not None and generic.acknowledge_events is True  # the default
    cases = [
        (
            "  - {name: pagerduty, kind: alertmanager, service: api, acknowledge_events: false}",
            "integrations.0.acknowledge_events: Value error, applies to pagerduty integrations"
            " only (alertmanager sends no acknowledgements)",
        ),
        (
            "  - {name: pagerduty, kind: pagerduty, service: api, acknowledge_events: sometimes}",
            "integrations.0.acknowledge_events: Input should be a valid boolean",
        ),
        (
            "  - {name: pagerduty, kind: pagerduty, service: api, acknowledge_event: false}",
            "integrations.0.acknowledge_event: Extra inputs are not permitted",
        ),
        (
            "  - {name: direct, kind: pagerduty, service: api}",
            "integrations.0.name: Value error, 'direct' is reserved",
        ),
    ]
    for line, problem in cases:
        with pytest.raises(PolicyError) as caught:
            parsed(line)
        assert str(caught.value).startswith(f"my-policy.yaml: {problem}"), str(caught.value)
