"""Schemathesis against /openapi.json on the real server: no 5xx anywhere, responses as
documented, invalid data refused, and no incident workflow started by a rejected request.

Two passes: without credentials (everything but health and metrics must be refused and
nothing may start), then with every credential the API knows (requests get deep into
the handlers; every workflow that exists afterwards must belong to an accepted request).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from domain.ids import incident_workflow_id
from starter.api.app import app
from tests.api.api_support import ApiEnv
from tests.api.wire_query import query_is_valid


@schemathesis.check
def invalid_data_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's negative_data_rejection, counting 413 as a refusal: a body over the
    size limit is refused before it is read, whatever else is wrong with it."""
    if response.status_code == 413:
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


CHECKS_FOR_VALID_DATA = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CHECKS = [*CHECKS_FOR_VALID_DATA, invalid_data_refused]
FUZZ = settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,  # a failure prints how to reproduce it
)
# Where an accepted request may start an incident workflow, and for which integration.
STARTS = {
    "/v2/enqueue": "pagerduty",
    "/alerts/alertmanager": "alertmanager",
    "/alerts/grafana": "grafana",
    "/alerts": "generic",
}


@dataclass
class FuzzLog:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    requests: int = 0
    accepted_workflows: set[str] = field(default_factory=set)
    unauthenticated_accepted: list[str] = field(default_factory=list)

    def record(self, method: str, path: str, status: int, body: Any) -> None:
        self.requests += 1
        if status >= 300 or method != "POST":
            return
        if path == "/incidents" and isinstance(body, dict):
            self.accepted_workflows.add(body["workflow_id"])
        elif path in STARTS and isinstance(body, dict):
            keys = [a["dedup_key"] for a in body["alerts"]] if "alerts" in body else []
            keys += [body["dedup_key"]] if "dedup_key" in body else []
            self.accepted_workflows.update(incident_workflow_id(k, STARTS[path]) for k in keys)


@pytest.fixture(scope="module")
def fuzz_log() -> FuzzLog:
    return FuzzLog()


@pytest.fixture(scope="module")
def fuzz_schema(api_env: ApiEnv) -> Any:
    return schemathesis.openapi.from_url(f"{api_env.url}/openapi.json")


def credentials(api_env: ApiEnv, path: str) -> dict[str, str]:
    integration = {
        "/alerts/alertmanager": "alertmanager",
        "/alerts/grafana": "grafana",
        "/alerts": "generic",
    }.get(path)
    token = api_env.stack.key(integration) if integration else api_env.stack.secrets().api_token
    return {"Authorization": f"Bearer {token}"}


# schemathesis' pytest plugin does not run on pytest 9 (it reads Function._nodeid), so
# each operation gets a plain parametrized test that drives the operation's strategy.
CASES = [
    (method.upper(), path, mode)
    for path, ops in app.openapi()["paths"].items()
    for method, op in ops.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Without parameters or a body there is no invalid request to generate.
    if mode == GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")
]
OPEN = ("/health", "/health/detailed", "/metrics")


def sent_as_valid(case: Any, url: str, overridden_headers: set[str]) -> bool:
    """Whether a negative case stopped being one on its way out: its only invalid parts
    were headers the test replaced, or query values a query string cannot carry (an
    array of one, an object, null). Those go out as valid text, and a 2xx is right."""
    meta = case.meta
    negative = {where for where, part in meta.components.items() if part.mode.is_negative}
    if not negative <= {ParameterLocation.HEADER, ParameterLocation.QUERY}:
        return False
    headers = {
        m.parameter.lower()
        for m in meta.phase.data.mutations
        if m.parameter_location == ParameterLocation.HEADER and m.parameter
    }
    if ParameterLocation.HEADER in negative and not (headers and headers <= overridden_headers):
        return False
    spec = app.openapi()
    parameters = spec["paths"][case.path][case.method.lower()].get("parameters", [])
    return query_is_valid(url, parameters, spec["components"]["schemas"])


def fuzz(schema: Any, method: str, path: str, mode: GenerationMode, send: Any) -> None:
    operation = schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        send(case)

    run()


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_without_credentials(
    fuzz_schema: Any, fuzz_log: FuzzLog, method: str, path: str, mode: GenerationMode
) -> None:
    def send(case: Any) -> None:
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
        response = case.call(timeout=30)
        fuzz_log.record(case.method, case.path, response.status_code, _json(response))
        case.validate_response(response, checks=CHECKS)
        if response.status_code < 300 and case.path not in OPEN:
            fuzz_log.unauthenticated_accepted.append(f"{case.method} {case.path}")

    fuzz(fuzz_schema, method, path, mode, send)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_with_credentials(
    fuzz_schema: Any,
    api_env: ApiEnv,
    fuzz_log: FuzzLog,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    headers = credentials(api_env, path)

    def send(case: Any) -> None:
        # Set on the case itself, so schemathesis knows the request now carries them.
        case.headers = {**(case.headers or {}), **headers}
        if case.path == "/v2/enqueue" and isinstance(case.body, dict):
            # A new body object: schemathesis then knows the caller replaced it.
            case.body = {**case.body, "routing_key": api_env.stack.key("pagerduty")}
        response = case.call(timeout=30)
        fuzz_log.record(case.method, case.path, response.status_code, _json(response))
        overridden = {name.lower() for name in headers}
        valid = mode == GenerationMode.NEGATIVE and sent_as_valid(
            case, response.request.url, overridden
        )
        case.validate_response(response, checks=CHECKS_FOR_VALID_DATA if valid else CHECKS)

    fuzz(fuzz_schema, method, path, mode, send)


async def test_rejected_requests_started_nothing(api_env: ApiEnv, fuzz_log: FuzzLog) -> None:
    assert fuzz_log.requests > 100, "the fuzzer barely ran"
    assert fuzz_log.unauthenticated_accepted == []
    await asyncio.sleep(1.5)  # visibility lags starts by a moment
    since = fuzz_log.started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    query = f"WorkflowType = 'IncidentWorkflow' AND StartTime >= '{since}'"
    started = {execution.id async for execution in api_env.client.list_workflows(query)}
    unexplained = started - fuzz_log.accepted_workflows
    assert not unexplained, f"workflows no accepted request accounts for: {sorted(unexplained)}"
