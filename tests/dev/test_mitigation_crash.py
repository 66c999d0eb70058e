"""A worker SIGKILLed while a rollback call is in flight: the rollback runs once.

The deploy-tool stand-in executes the rollback, then holds its answer back; the worker
(a real ``python worker.py`` process) is killed in that window, so Temporal never hears
how the activity ended. A second worker retries it with the same Idempotency-Key, and the
deploy tool, which executes each key once (as Stripe-style APIs do), answers with the
first result. The incident records one successful rollback.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from domain.incident import IncidentState, MitigationDecision, MitigationRequest, Status
from domain.policy import Policy
from domain.runbooks import ProposalStatus
from starter.incidents import open_or_join
from tests.dev.support import wait_for, wait_polling, worker_env, worker_process
from tests.policies import with_api_runbook, write_policy
from tests.runbooks.servers import DeployTool, HealthServer
from tests.workflows.helpers import make_alert, state_of
from workflows.incident import IncidentWorkflow


async def test_sigkill_during_the_rollback_call_runs_it_once(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path
) -> None:
    client = dev_env.client
    with DeployTool() as deploy, HealthServer() as health:
        assert isinstance(deploy, DeployTool)
        held = deploy.hold("/rollback")
        policy = with_api_runbook(default_policy, health.url, deploy.url)
        queue = f"fw-mitigate-{uuid.uuid4().hex[:8]}"
        env = worker_env(
            client.service_client.config.target_host,
            tmp_path / "data",
            write_policy(policy, tmp_path / "policy.yaml"),
            queue,
        )
        first = worker_process(env, tmp_path / "worker-1.log").start()
        second = worker_process(env, tmp_path / "worker-2.log")
        handle = None
        try:
            await wait_polling(client, queue, first)
            handle = await open_or_join(client, make_alert("P1"), task_queue=queue)
            await handle.execute_update(IncidentWorkflow.opened)
            await handle.execute_update(
                IncidentWorkflow.propose_mitigation,
                MitigationRequest(by="carol", action="rollback"),
            )
            st: IncidentState = await handle.execute_update(
                IncidentWorkflow.decide_mitigation, MitigationDecision(by="dave", proposal=1)
            )
            assert st.status == Status.MITIGATING
            assert await asyncio.to_thread(held.wait_reached, 30), "the rollback never arrived"
            assert len(deploy.executions("/rollback")) == 1  # done, but not yet answered
            assert first.kill() == -9
            held.release()
            second.start()

            async def finished() -> IncidentState | None:
                st = await state_of(handle)
                return st if st.mitigations[0].status != ProposalStatus.RUNNING else None

            st = await wait_for(finished, timeout=90, what="the rollback's outcome")
        finally:
            if handle is not None:
                await handle.terminate("test over")
            first.close()
            second.close()

    proposal = st.mitigations[0]
    assert proposal.status == ProposalStatus.SUCCEEDED, proposal
    assert proposal.outcome is not None and proposal.outcome.response_status == 202
    assert proposal.outcome.attempts >= 2  # the retry after the crash
    calls = deploy.calls_to("/rollback")
    keys = {call.request.header("Idempotency-Key") for call in calls}
    assert len(calls) >= 2 and keys == {f"{st.incident_id}:mitigation:1"}
    assert len(deploy.executions("/rollback")) == 1  # executed exactly once
    assert [e.text for e in st.timeline if e.text.startswith("#1 rollback succeeded")]
