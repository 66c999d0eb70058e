"""An incident's ticket read from the database through the API and the CLI
(``GET /incidents/{id}/ticket``, ``firewatch document``): what the worker wrote, whichever
host, the same bytes as the embedded default's mirror file."""

from __future__ import annotations

from typing import Any

import httpx

from storage.database import Database, sqlite_url
from storage.documents import Documents
from tests.api.api_support import ApiEnv, eventually, unique
from tests.api.test_integrations_added import firewatch


async def test_the_ticket_comes_from_the_database(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    summary = f"Checkout is down {unique('doc')}"
    body = {"service": "api", "severity": "P1", "summary": summary}
    opened = await http.post("/incidents", json=body, headers=api_headers)
    assert opened.status_code == 201, opened.text
    incident_id = opened.json()["incident_id"]
    path = f"/incidents/{incident_id}/ticket"

    async def written() -> dict[str, Any] | None:
        response = await http.get(path, headers=api_headers)
        return response.json() if response.status_code == 200 else None

    doc = await eventually(written)
    assert (doc["kind"], doc["incident_id"]) == ("ticket", incident_id)
    assert doc["path"] == f"tickets/{incident_id}.md"
    assert summary in doc["markdown"]
    assert doc["markdown"].endswith(f"<!-- firewatch-version: {doc['version']} -->\n")
    stored = Documents(Database.open(sqlite_url(api_env.stack.data))).get("ticket", incident_id)
    assert stored is not None and stored.version >= doc["version"]
    # The embedded default also mirrors it into the data dir; the mirror is never ahead.
    mirror = (api_env.stack.data / "tickets" / f"{incident_id}.md").read_text()
    assert summary in mirror

    shown = await firewatch(api_env, "document", incident_id)
    assert shown.exit_code == 0, shown.stderr
    assert summary in shown.stdout and "firewatch-version" in shown.stdout

    # The token is needed; an unknown incident or a missing draft is a 404 that says so.
    assert (await http.get(path)).status_code == 401
    unknown = await http.get("/incidents/INC-2020-01-01-999/ticket", headers=api_headers)
    assert unknown.status_code == 404 and "INC-2020-01-01-999" in unknown.json()["detail"]
    draft = await http.get(f"/incidents/{incident_id}/postmortem/document", headers=api_headers)
    assert draft.status_code == 404 and "post-mortem draft" in draft.json()["detail"]
    missing = await firewatch(api_env, "document", incident_id, "--postmortem")
    assert missing.exit_code == 1 and "post-mortem draft" in missing.stderr
