"""Incidents opened without a dedup key get workflow ids that name them in the Temporal UI.

Each entry point that makes up a key (POST /incidents, which the CLI's ``trigger`` uses,
the generic webhook and PagerDuty's Events API) answers with it; the workflow runs under
``incident/<integration>/<service>-<UTC minute>-<summary>-<8 hex>``, and two alerts with
the same words in the same minute still open two incidents.
"""

from __future__ import annotations

import re

import httpx

from domain.ids import incident_workflow_id
from tests.api.api_support import ApiEnv

MINUTE = r"\d{4}-\d{2}-\d{2}T\d{4}Z"


def readable(service: str, words: str) -> re.Pattern[str]:
    return re.compile(rf"{service}-{MINUTE}-{words}-[0-9a-f]{{8}}")


async def started(api_env: ApiEnv, workflow_id: str) -> bool:
    description = await api_env.client.get_workflow_handle(workflow_id).describe()
    return description.id == workflow_id


async def test_incidents_api_makes_a_readable_key(
    api_env: ApiEnv, http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    body = {"service": "checkout", "severity": "P3", "summary": "Checkout: 5xx > 2% (EU)"}
    response = await http.post("/incidents", json=body, headers=api_headers)
    # 201 with the incident, or 202 while no worker has opened it: both name the workflow.
    assert response.status_code in (201, 202), response.text
    answer = response.json()
    assert readable("checkout", "checkout-5xx-2-eu").fullmatch(answer["dedup_key"]), answer
    assert answer["workflow_id"] == f"incident/direct/{answer['dedup_key']}"
    assert await started(api_env, answer["workflow_id"])


async def test_generic_webhook_makes_a_readable_key(
    api_env: ApiEnv, http: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {api_env.stack.key('generic')}"}
    body = {"summary": "Disk 95% on db-1", "service": "database", "severity": "P3"}
    keys = []
    for _ in range(2):  # the same words in the same minute: two incidents
        response = await http.post("/alerts", json=body, headers=headers)
        assert response.status_code == 202, response.text
        key = response.json()["dedup_key"]
        assert readable("database", "disk-95-on-db-1").fullmatch(key), key
        assert await started(api_env, incident_workflow_id(key, "generic"))
        keys.append(key)
    assert keys[0] != keys[1]


async def test_pagerduty_makes_a_readable_key(api_env: ApiEnv, http: httpx.AsyncClient) -> None:
    event = {
        "routing_key": api_env.stack.key("pagerduty"),
        "event_action": "trigger",
        "payload": {"summary": "Queue lag > 10 min", "source": "kafka-3", "severity": "info"},
    }
    response = await http.post("/v2/enqueue", json=event)
    assert response.status_code == 202, response.text
    key = response.json()["dedup_key"]
    integration = api_env.stack.policy.integration("pagerduty")
    assert integration is not None
    service = re.escape(integration.service)
    assert readable(service, "queue-lag-10-min").fullmatch(key), key
    assert await started(api_env, incident_workflow_id(key, "pagerduty"))
