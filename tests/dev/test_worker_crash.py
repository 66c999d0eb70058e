"""A worker killed with SIGKILL mid-ladder: the next page still goes out once, on time.

The worker runs as a real process (``python worker.py``) against the session's dev
server, with the shipped policy on a clock where one minute lasts one second and the P1
ladder's windows cut to LEVEL_WINDOW: primary at 0 s, secondary at 10 s, team lead at 20 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import OutboxRow, Store
from domain.incident import AcknowledgeRequest, IncidentState
from domain.policy import Policy, Role, Severity
from starter.incidents import open_or_join
from tests.dev.support import (
    by_kind_recipient,
    deliveries,
    outbox,
    wait_for,
    wait_polling,
    worker_env,
    worker_process,
)
from tests.policies import short_ladder_policy, write_policy
from tests.workflows.helpers import make_alert, state_of
from workflows.incident import IncidentWorkflow

UNIT = timedelta(seconds=1)  # one policy minute
LEVEL_WINDOW = timedelta(seconds=10)
# The killed worker's sticky queue holds the next task for worker.STICKY_TIMEOUT (1 s)
# before the new worker may take it; killing the worker this long before the next page
# is due leaves the new worker time to start.
STICKY_WINDOW = timedelta(seconds=6)
# How late a page may be recorded after its planned instant (timer + task + activity).
ON_TIME = timedelta(seconds=2)


async def test_sigkill_mid_ladder_pages_once_on_time(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path
) -> None:
    client = dev_env.client
    policy = short_ladder_policy(default_policy, unit=UNIT, window=LEVEL_WINDOW)
    p1 = policy.for_severity(Severity.P1)
    level2_offset = p1.ladder[0].window  # 10 s
    level3_offset = level2_offset + p1.ladder[1].window  # 20 s
    queue = f"fw-crash-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    env = worker_env(
        client.service_client.config.target_host,
        data,
        write_policy(policy, tmp_path / "policy.yaml"),
        queue,
    )
    store = Store(data)
    first = worker_process(env, tmp_path / "worker-1.log").start()
    second = worker_process(env, tmp_path / "worker-2.log")
    handle = None
    try:
        await wait_polling(client, queue, first)
        handle = await open_or_join(client, make_alert("P1"), task_queue=queue)
        opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
        incident = opened.incident_id
        assert incident is not None
        level2_due = opened.opened_at + level2_offset

        async def asleep_after_level1() -> IncidentState | None:
            st = await state_of(handle)
            # next_step_at is published just before the workflow sleeps on its timer.
            asleep = len(st.pages) == 1 and st.next_step_at == level2_due
            return st if asleep else None

        st = await wait_for(asleep_after_level1, timeout=10, what="level-1 page, then sleep")
        assert st.next_step_label == "page Secondary On-Call"
        assert [(r.kind, r.recipient) for r in outbox(store, incident)] == [
            ("initial_alert", "#incidents"),
            ("page", st.pages[0].person),
        ]
        # Mid-ladder: the level-2 page must still be in the future, beyond the sticky window.
        assert datetime.now(UTC) + STICKY_WINDOW < level2_due, "setup too slow for this test"

        assert first.kill() == -9
        second.start()
        await wait_polling(client, queue, second)
        assert datetime.now(UTC) < level2_due, "the restarted worker came up too late"

        async def level2_recorded() -> list[OutboxRow]:
            rows = [r for r in outbox(store, incident) if r.kind == "page"]
            return rows if len(rows) == 2 else []

        wait = (level2_due - datetime.now(UTC)).total_seconds() + 15
        pages = await wait_for(level2_recorded, timeout=wait, what="level-2 page")
        st = await state_of(handle)
        assert [(p.level, p.role) for p in st.pages] == [(0, Role.PRIMARY), (1, Role.SECONDARY)]
        assert st.pages[1].at == level2_due  # the planned instant, exactly
        level2 = pages[1]
        assert level2.recipient == st.pages[1].person
        assert level2.scheduled_at == level2_due
        late = level2.recorded_at - level2.scheduled_at
        assert timedelta(0) <= late <= ON_TIME, f"level-2 page recorded {late} after it was due"

        # The paged secondary acknowledges: the ladder stops.
        acker = st.pages[1].person
        st = await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=acker))
        assert st.acknowledged_by == acker
        assert st.acknowledged_at is not None and p1.update_overdue_after is not None

        # Nothing stale after the restart: past the time the level-3 page was due, the
        # acknowledged ladder has sent nothing more.
        level3_due = opened.opened_at + level3_offset
        await asyncio.sleep(max((level3_due - datetime.now(UTC)).total_seconds(), 0) + 2)
        st = await state_of(handle)

        rows = outbox(store, incident)
        keys = [r.idempotency_key for r in rows]
        assert len(keys) == len(set(keys))
        assert [(p.level, p.person) for p in st.pages] == [(0, st.pages[0].person), (1, acker)]
        assert [e.kind for e in st.timeline].count("page") == 2
        assert by_kind_recipient(rows) == Counter(
            {
                ("initial_alert", "#incidents"): 1,
                ("page", st.pages[0].person): 1,
                ("page", acker): 1,
                ("acknowledged", "#incidents"): 1,
            }
        )
        # The workflow itself decided each notification once, and each delivery was a first
        # delivery: the outbox's idempotency did not have to hide a re-sent page.
        history = await deliveries(handle)
        assert sorted(key for key, _ in history) == sorted(keys)
        assert all(result is not None and result.delivered for _, result in history)
    finally:
        if handle is not None:
            with contextlib.suppress(Exception):
                await handle.terminate("test over")
        for proc in (first, second):
            proc.close()
