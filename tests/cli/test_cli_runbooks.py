"""``firewatch change add``, ``runbook``, ``mitigate``, ``approve`` and ``decline`` end to end:
the HTTP API, a worker and the Temporal dev server, with the api service's runbook pointed
at a local health endpoint and a local deploy tool."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from starter.api.context import ApiSettings
from tests.api.api_support import ApiStack, api_policy, register_namespace
from tests.cli.test_cli_live import Run, trigger, until
from tests.cli.test_cli_live import firewatch as firewatch
from tests.policies import with_api_runbook
from tests.runbooks.servers import DeployTool, HealthServer


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment,
    default_policy: Policy,
    loopback_health: HealthServer,
    loopback_deploy_tool: DeployTool,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ApiStack]:
    namespace = f"fw-rb-{uuid.uuid4().hex[:8]}"
    await register_namespace(dev_env, namespace)
    api = ApiStack(
        target=dev_env.client.service_client.config.target_host,
        namespace=namespace,
        policy=with_api_runbook(
            api_policy(default_policy), loopback_health.url, loopback_deploy_tool.url
        ),
        data=tmp_path_factory.mktemp("rb-data"),
        settings=ApiSettings(task_queue=f"fw-rb-{uuid.uuid4().hex[:8]}", worker_timeout_s=15),
    )
    await asyncio.to_thread(api.start)
    try:
        yield api
    finally:
        await asyncio.to_thread(api.stop)


def test_runbook_shows_results_with_the_latest_deploy(
    firewatch: Run, loopback_health: HealthServer, tmp_path: Path
) -> None:
    added = firewatch(
        "change", "add", "--service", "api", "--summary", "Deploy v412", "--who", "alice"
    )
    assert added.exit_code == 0, added.output
    inc = trigger(firewatch, "api", "P2", "login errors")
    loopback_health.mode = "down"
    ran = firewatch("runbook", inc, "--by", "carol", "--wait", "30")
    loopback_health.mode = "healthy"
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    assert lines[0] == "Diagnostics #2 (asked by Carol Christensen):"
    assert lines[1] == "  FAILED health: 503"
    assert lines[2] == "  FAILED db: 503"
    assert re.fullmatch(r"  ok     deploys: Deploy v412 by alice \S+ ago", lines[3]), lines[3]
    assert lines[4] == "  manual vitals: Check Core Web Vitals"
    one = firewatch("runbook", inc, "--by", "carol", "--step", "nope")
    assert one.exit_code != 0
    assert "no check 'nope' in the api runbook; checks: health, db, deploys" in one.stderr


def test_mitigate_approve_by_another_person(
    firewatch: Run, loopback_deploy_tool: DeployTool
) -> None:
    inc = trigger(firewatch, "api", "P1", "checkout failing after deploy")
    proposed = firewatch("mitigate", inc, "rollback", "--by", "carol", "--reason", "bad deploy")
    assert proposed.exit_code == 0, proposed.output
    assert proposed.stdout.splitlines()[0] == (
        f"#1 rollback: proposed (another person must approve: firewatch approve {inc} 1 --by NAME)"
    )
    own = firewatch("approve", inc, "1", "--by", "carol")
    assert own.exit_code != 0
    assert "another person must approve it (two-person rule)" in own.stderr
    stranger = firewatch("approve", inc, "1", "--by", "mallory")
    assert stranger.exit_code != 0 and "'mallory' is not on the roster" in stranger.stderr
    approved = firewatch("approve", inc, "1", "--by", "dave")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.splitlines()[0].startswith("#1 rollback: running")

    def succeeded() -> dict[str, object] | None:
        state = json.loads(firewatch("show", inc, "--json").stdout)
        proposal = state["mitigations"][0]
        return proposal if proposal["status"] == "succeeded" else None

    proposal = until(succeeded, timeout=30)
    assert proposal["decided_by"] == "dave"
    executed = [e for e in loopback_deploy_tool.executions("/rollback") if inc.encode() in e.body]
    assert len(executed) == 1
    late = firewatch("decline", inc, "1", "--by", "erin")
    assert late.exit_code != 0 and "is already succeeded" in late.stderr
    shown = firewatch("show", inc).stdout
    assert "mitigation       #1 rollback: succeeded - 202" in shown
