"""Runbooks in an incident's life (time-skipping server, real loopback servers): checks run
beside the ladder, mitigations run once approved, and a success is verified."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.incident import DiagnosticsRequest, MitigationDecision, MitigationRequest, Status
from domain.policy import Policy
from domain.runbooks import Outcome, ProposalStatus
from starter.incidents import ActionRejected, run_update
from tests.conftest import running_worker
from tests.policies import with_api_runbook
from tests.runbooks.servers import DeployTool, HealthServer
from tests.workflows.helpers import minutes, open_incident, page_offsets, state_of, wait_until
from workflows.incident import IncidentWorkflow


@pytest.fixture
def health() -> Iterator[HealthServer]:
    with HealthServer() as server:
        assert isinstance(server, HealthServer)
        yield server


@pytest.fixture
def deploy_tool() -> Iterator[DeployTool]:
    with DeployTool() as server:
        assert isinstance(server, DeployTool)
        yield server


@pytest.fixture
async def queue(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
    health: HealthServer,
    deploy_tool: DeployTool,
) -> AsyncIterator[str]:
    policy = with_api_runbook(default_policy, health.url, deploy_tool.url)
    async with running_worker(ts_env.client, policy, tmp_path, executor) as (_, name):
        yield name


async def act(handle: WorkflowHandle[Any, Any], update: Any, request: Any) -> Any:
    return await run_update(handle, update, request)


async def test_a_hanging_check_never_delays_a_page(
    ts_env: WorkflowEnvironment, queue: str, health: HealthServer
) -> None:
    health.mode = "hang"
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(minutes(20))
    st = await state_of(handle)
    assert [(o, r) for o, r, _ in page_offsets(st)] == [
        (minutes(0), "primary"),
        (minutes(15), "secondary"),
    ]
    st = await wait_until(handle, lambda s: s.latest_diagnostics is not None, timeout=60)
    run = st.latest_diagnostics
    assert run is not None and run.reason == "incident opened"
    outcomes = {r.name: r.outcome for r in run.results}
    assert outcomes == {
        "health": Outcome.ERROR,
        "db": Outcome.ERROR,
        "deploys": Outcome.OK,
        "vitals": Outcome.MANUAL,
    }
    assert any(e.text.startswith("Diagnostics #1 (2 of 4 not ok): health ") for e in st.timeline)


async def test_on_demand_run_of_one_check(
    ts_env: WorkflowEnvironment, queue: str, health: HealthServer
) -> None:
    handle = await open_incident(ts_env.client, queue, "P2")
    await wait_until(handle, lambda s: s.latest_diagnostics is not None, timeout=30)
    health.mode = "down"
    st = await act(
        handle, IncidentWorkflow.run_diagnostics, DiagnosticsRequest(by="carol", check="db")
    )
    assert st.runbook_runs_started == 2
    st = await wait_until(
        handle, lambda s: s.latest_diagnostics is not None and s.latest_diagnostics.number == 2
    )
    run = st.latest_diagnostics
    assert run is not None and [(r.name, r.outcome, r.summary) for r in run.results] == [
        ("db", Outcome.FAILED, "503")
    ]
    with pytest.raises(ActionRejected, match="no check 'nope' in the api runbook"):
        await act(
            handle, IncidentWorkflow.run_diagnostics, DiagnosticsRequest(by="carol", check="nope")
        )


async def test_approved_rollback_runs_once_and_is_verified(
    ts_env: WorkflowEnvironment, queue: str, deploy_tool: DeployTool, tmp_path: Path
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await wait_until(handle, lambda s: s.latest_diagnostics is not None, timeout=30)
    st = await act(
        handle,
        IncidentWorkflow.propose_mitigation,
        MitigationRequest(by="carol", action="rollback", reason="deploy v412 broke login"),
    )
    assert st.mitigations[0].status == ProposalStatus.PROPOSED
    assert st.status == Status.INVESTIGATING  # proposing acknowledged it
    with pytest.raises(ActionRejected, match="another person must approve it"):
        await act(
            handle, IncidentWorkflow.decide_mitigation, MitigationDecision(by="carol", proposal=1)
        )
    with pytest.raises(ActionRejected, match="'mallory' is not on the roster"):
        await act(
            handle, IncidentWorkflow.decide_mitigation, MitigationDecision(by="mallory", proposal=1)
        )
    st = await act(
        handle, IncidentWorkflow.decide_mitigation, MitigationDecision(by="dave", proposal=1)
    )
    assert st.status == Status.MITIGATING
    st = await wait_until(
        handle,
        lambda s: s.latest_diagnostics is not None and s.latest_diagnostics.verifies == 1,
        timeout=30,
    )
    proposal = st.mitigations[0]
    assert proposal.status == ProposalStatus.SUCCEEDED
    assert proposal.outcome is not None and proposal.outcome.response_status == 202
    executed = deploy_tool.executions("/rollback")
    assert len(executed) == 1
    assert executed[0].key == f"{st.incident_id}:mitigation:1"
    assert b'"by": "dave"' in executed[0].body
    texts = [e.text for e in st.timeline]
    assert "Verification after rollback passed: consider resolving" in texts
    assert st.is_open  # never resolved by itself
    # The ticket (written beside the ladder, so it may land a moment later) has both runs
    # under Diagnostics and the audit line under Mitigation Actions.
    ticket = ""
    for _ in range(100):
        texts_now = [p.read_text() for p in (tmp_path / "tickets").glob(f"{st.incident_id}*")]
        ticket = next((t for t in texts_now if "(verify rollback," in t), "")
        if ticket:
            break
        await asyncio.sleep(0.1)
    assert "## Diagnostics\n- **Run #1** (incident opened, " in ticket
    assert "- **Run #2** (verify rollback, " in ticket
    assert "  - ✅ health: ok " in ticket
    assert (
        "   - #1 rollback (Roll back the latest deployment), high risk: proposed by "
        "Carol Christensen at " in ticket
    )
    assert "approved by Dave Dahl at " in ticket
    assert f"sent: POST {deploy_tool.url}/rollback" in ticket
    thread = [
        n.text for n in Store(tmp_path).notifications(st.incident_id) if n.kind == "mitigation"
    ]
    assert len(thread) == 3  # proposed, running, finished


async def test_an_undecided_proposal_expires(ts_env: WorkflowEnvironment, queue: str) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await act(
        handle,
        IncidentWorkflow.propose_mitigation,
        MitigationRequest(by="carol", action="rollback"),
    )
    await ts_env.sleep(minutes(31))
    st = await state_of(handle)
    assert st.mitigations[0].status == ProposalStatus.EXPIRED
    assert st.timeline[-1].text != ""
    assert any(e.text == "Proposal #1 rollback expired without approval" for e in st.timeline)
    with pytest.raises(ActionRejected, match="is already expired"):
        await act(
            handle, IncidentWorkflow.decide_mitigation, MitigationDecision(by="dave", proposal=1)
        )
    assert timedelta(0) < st.mitigations[0].proposed_at - st.opened_at + timedelta(seconds=1)
