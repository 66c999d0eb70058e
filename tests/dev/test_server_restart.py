"""The Temporal server stops mid-ladder and comes back on the same database.

A real ``temporal server start-dev`` (SQLite file) and a real worker process run here,
the policy on a clock where one minute lasts one second (P1: primary at 0 s, secondary
at 15 s). The server is stopped with SIGTERM after the first page and restarted on the
same file and port; the incident must survive and page the secondary once, on time.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from activities.store import OutboxRow, Store
from domain.incident import IncidentState, Status
from domain.policy import Policy, Role, Severity
from starter.incidents import open_or_join
from tests.dev.support import (
    Proc,
    by_kind_recipient,
    connect_when_up,
    deliveries,
    dev_server_process,
    free_port,
    log_tail,
    outbox,
    wait_for,
    wait_polling,
    worker_env,
    worker_process,
)
from tests.policies import scaled_policy, write_policy
from tests.workflows.helpers import make_alert, state_of
from workflows.incident import IncidentWorkflow

UNIT = timedelta(seconds=1)  # one policy minute
ON_TIME = timedelta(seconds=2)


async def test_server_restart_keeps_the_incident_and_its_timer(
    default_policy: Policy, tmp_path: Path
) -> None:
    policy = scaled_policy(default_policy, unit=UNIT)
    level2_offset = policy.for_severity(Severity.P1).ladder[0].window  # 15 s
    port = free_port()
    target = f"127.0.0.1:{port}"
    db = tmp_path / "temporal.db"
    queue = f"fw-restart-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    env = worker_env(target, data, write_policy(policy, tmp_path / "policy.yaml"), queue)
    store = Store(data)
    procs: list[Proc] = []
    try:
        server = dev_server_process(db, port, tmp_path / "server-1.log").start()
        procs.append(server)
        client = await connect_when_up(target, server)
        worker = worker_process(env, tmp_path / "worker-1.log").start()
        procs.append(worker)
        await wait_polling(client, queue, worker)

        handle = await open_or_join(client, make_alert("P1"), task_queue=queue)
        opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
        incident = opened.incident_id
        assert incident is not None
        level2_due = opened.opened_at + level2_offset

        async def asleep_after_level1() -> bool:
            st = await state_of(handle)
            return len(st.pages) == 1 and st.next_step_at == level2_due

        await wait_for(asleep_after_level1, timeout=10, what="level-1 page, then sleep")
        assert [r.kind for r in outbox(store, incident)] == ["initial_alert", "page"]

        # Stop the server cleanly and bring it back on the same database file and port.
        assert server.terminate() == 0, log_tail(server.log)
        server = dev_server_process(db, port, tmp_path / "server-2.log").start()
        procs.append(server)
        client = await connect_when_up(target, server)
        assert datetime.now(UTC) < level2_due, "the server restart took longer than the window"

        # The worker process rides out the outage: its client reconnects by itself. Should it
        # ever exit while the server is away, that is a failure of this test, not a restart.
        assert worker.alive(), f"worker died with the server:\n{log_tail(worker.log)}"
        handle = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert (await state_of(handle)).status == Status.TRIGGERED
        assert await _listed(client, incident)

        async def level2_recorded() -> list[OutboxRow]:
            rows = [r for r in outbox(store, incident) if r.kind == "page"]
            return rows if len(rows) == 2 else []

        wait = (level2_due - datetime.now(UTC)).total_seconds() + 15
        pages = await wait_for(level2_recorded, timeout=wait, what="level-2 page")
        st = await state_of(handle)
        assert [(p.level, p.role) for p in st.pages] == [(0, Role.PRIMARY), (1, Role.SECONDARY)]
        assert st.pages[1].at == level2_due
        assert pages[1].scheduled_at == level2_due
        late = pages[1].recorded_at - pages[1].scheduled_at
        assert timedelta(0) <= late <= ON_TIME, f"level-2 page recorded {late} after it was due"

        rows = outbox(store, incident)
        keys = [r.idempotency_key for r in rows]
        assert len(keys) == len(set(keys))
        assert by_kind_recipient(rows) == Counter(
            {
                ("initial_alert", "#incidents"): 1,
                ("page", st.pages[0].person): 1,
                ("page", st.pages[1].person): 1,
            }
        )
        history = await deliveries(handle)
        assert sorted(key for key, _ in history) == sorted(keys)
        assert all(result is not None and result.delivered for _, result in history)
        assert [e.kind for e in st.timeline].count("page") == 2
        assert worker.alive()
    finally:
        for proc in reversed(procs):
            proc.close()


async def _listed(client: Client, incident: str) -> bool:
    """Visibility on the restarted server still shows the incident as open."""

    async def probe() -> bool:
        query = f"WorkflowType = 'IncidentWorkflow' AND IncidentId = '{incident}'"
        found = [wf async for wf in client.list_workflows(query)]
        return len(found) == 1 and found[0].status == WorkflowExecutionStatus.RUNNING

    return await wait_for(probe, timeout=10, what=f"{incident} in visibility")
