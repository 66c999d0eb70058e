"""POST /heartbeats/{name} and GET /heartbeats on the real API, worker and dev server; and
`firewatch heartbeats`. A refused ping starts nothing; the token never reaches Temporal."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.heartbeats import heartbeat_incident_workflow_id, heartbeat_workflow_id
from tests.api.api_support import ApiEnv
from tests.heartbeats.conftest import GUARDED, LOAD, SHORT, Run, bearer, token
from tests.heartbeats.support import NIGHTLY, beat_when, eventually, exists


async def test_a_ping_is_accepted_and_arms_the_monitor(
    beats_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    before = datetime.now(UTC)
    response = await http.post(
        f"/heartbeats/{NIGHTLY.name}", headers=bearer(token(beats_env, NIGHTLY.name))
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["heartbeat"] == NIGHTLY.name
    due = datetime.fromisoformat(body["due_by"])
    assert before + timedelta(hours=26) <= due <= datetime.now(UTC) + timedelta(hours=26)
    state = await beat_when(beats_env.client, NIGHTLY.name, lambda s: s.pings >= 1)
    assert state.last_ping_at is not None and state.missed_at is None
    # The token stays in the API: not in the workflow's history (input, signal, summary).
    history = await beats_env.client.get_workflow_handle(
        heartbeat_workflow_id(NIGHTLY.name)
    ).fetch_history()
    assert token(beats_env, NIGHTLY.name) not in json.dumps(history.to_json_dict())


async def test_wrong_or_missing_tokens_are_refused_and_start_nothing(
    beats_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    path = f"/heartbeats/{GUARDED.name}"
    assert (await http.post(path)).status_code == 401
    assert (await http.post(path, headers={"Authorization": "Basic eDp5"})).status_code == 401
    for wrong in (
        "not-the-token",
        token(beats_env, NIGHTLY.name),  # another monitor's token
        beats_env.stack.secrets().api_token,  # the API token is not a heartbeat token
        token(beats_env, GUARDED.name)[:-1],
    ):
        response = await http.post(path, headers=bearer(wrong))
        assert response.status_code == 403, response.text
        assert wrong not in response.text
    assert not await exists(beats_env.client, heartbeat_workflow_id(GUARDED.name))


async def test_unknown_monitors_are_404(beats_env: ApiEnv, http: httpx.AsyncClient) -> None:
    response = await http.post("/heartbeats/no-such-job", headers=bearer("whatever"))
    assert response.status_code == 404
    assert "no-such-job" in response.json()["detail"]
    assert not await exists(beats_env.client, heartbeat_workflow_id("no-such-job"))
    # A name no monitor can have is refused by its shape.
    assert (await http.post("/heartbeats/Bad%20Name", headers=bearer("x"))).status_code == 422


def test_tokens_are_stored_with_the_other_secrets(beats_env: ApiEnv) -> None:
    path = beats_env.stack.data / "firewatch.db"  # the database holds them: owner-only
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (beats_env.stack.data / "secrets.json").exists()
    secrets = beats_env.stack.secrets()
    names = {NIGHTLY.name, GUARDED.name, SHORT.name, *(m.name for m in LOAD)}
    assert set(secrets.heartbeats) == names
    assert len(set(secrets.heartbeats.values())) == len(names)  # one token per monitor
    assert all(len(value) >= 40 for value in secrets.heartbeats.values())
    shown = f"{secrets!r} {secrets}"
    assert not any(value in shown for value in secrets.heartbeats.values())


async def test_the_list_needs_the_api_token_and_masks_tokens(
    beats_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/heartbeats")).status_code == 401
    refused = await http.get("/heartbeats", headers=bearer(token(beats_env, NIGHTLY.name)))
    assert refused.status_code == 403
    await http.post(f"/heartbeats/{NIGHTLY.name}", headers=bearer(token(beats_env, NIGHTLY.name)))
    await beat_when(beats_env.client, NIGHTLY.name, lambda s: s.pings >= 1)
    api = beats_env.stack.api_headers()
    listed = (await http.get("/heartbeats", headers=api)).json()
    assert listed["secrets"] == "masked"
    rows = {r["name"]: r for r in listed["heartbeats"]}
    assert len(rows) == 3 + len(LOAD)
    nightly = rows[NIGHTLY.name]
    assert nightly["status"] == "up" and nightly["pings"] >= 1
    assert (nightly["period"], nightly["grace"], nightly["service"]) == ("1d", "2h", "api")
    assert nightly["url"] == f"{beats_env.url}/heartbeats/{NIGHTLY.name}"
    assert nightly["token"] != token(beats_env, NIGHTLY.name) and nightly["masked"]
    assert rows[GUARDED.name]["status"] == "waiting" and rows[GUARDED.name]["last_ping_at"] is None
    shown = (await http.get("/heartbeats?show_urls=true", headers=api)).json()
    tokens = {r["name"]: r["token"] for r in shown["heartbeats"]}
    assert tokens[NIGHTLY.name] == token(beats_env, NIGHTLY.name)


async def test_firewatch_heartbeats(
    beats_env: ApiEnv, http: httpx.AsyncClient, firewatch: Run
) -> None:
    await http.post(f"/heartbeats/{NIGHTLY.name}", headers=bearer(token(beats_env, NIGHTLY.name)))
    await beat_when(beats_env.client, NIGHTLY.name, lambda s: s.pings >= 1)
    listed = firewatch("heartbeats")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == [
        "NAME",
        "SERVICE",
        "SEV",
        "PERIOD",
        "+",
        "GRACE",
        "STATUS",
        "LAST",
        "PING",
        "DUE",
        "BY",
    ]
    nightly = next(line for line in lines if line.startswith(NIGHTLY.name))
    assert " up " in nightly and "1d + 2h" in nightly and "ago)" in nightly and "(in 25h" in nightly
    guarded = next(line for line in lines if line.startswith(GUARDED.name))
    assert "waiting (never pinged)" in guarded
    assert token(beats_env, NIGHTLY.name) not in listed.output

    shown = firewatch("heartbeats", "--show-urls")
    assert shown.exit_code == 0, shown.output
    assert f"POST {beats_env.url}/heartbeats/{NIGHTLY.name}" in shown.output
    assert f"token  {token(beats_env, NIGHTLY.name)}" in shown.output

    as_json = firewatch("heartbeats", "list", "--json")
    assert as_json.exit_code == 0
    assert {r["name"] for r in json.loads(as_json.output)["heartbeats"]} >= {NIGHTLY.name}


async def test_a_missed_monitor_names_its_incident(
    beats_env: ApiEnv, http: httpx.AsyncClient, firewatch: Run
) -> None:
    """The list names the incident a miss opened by its INC id, ready for ``firewatch show``."""
    await http.post(f"/heartbeats/{SHORT.name}", headers=bearer(token(beats_env, SHORT.name)))
    await beat_when(beats_env.client, SHORT.name, lambda s: s.missed_at is not None)
    api = beats_env.stack.api_headers()

    async def short_row() -> dict[str, Any] | None:
        rows = (await http.get("/heartbeats", headers=api)).json()["heartbeats"]
        row: dict[str, Any] = next(r for r in rows if r["name"] == SHORT.name)
        return row if row["incident_id"] else None

    row = await eventually(short_row, timeout=20, what="the missed monitor's incident id")
    incident_id = row["incident_id"]
    assert row["status"] == "missed" and incident_id.startswith("INC-")
    assert row["incident_workflow_id"] == heartbeat_incident_workflow_id(SHORT.name)
    listed = firewatch("heartbeats")
    assert listed.exit_code == 0, listed.output
    assert f"{SHORT.name}: {incident_id} is open (firewatch show {incident_id})" in listed.output
    shown = firewatch("show", incident_id)
    assert shown.exit_code == 0, shown.output
    assert f"Heartbeat `{SHORT.name}` missed" in shown.output
