"""The schedules across restarts, with real processes: a worker process creates them at
start-up; the Temporal server restarts on the same database and a new worker process
starts; there is still exactly one schedule per rotation, one weekly follow-up and one
monthly report."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.client import Client, ScheduleActionStartWorkflow

from domain.policy import Policy
from tests.dev.support import (
    Proc,
    connect_when_up,
    dev_server_process,
    free_port,
    log_tail,
    wait_for,
    wait_polling,
    worker_env,
    worker_process,
)
from tests.policies import write_policy

EXPECTED = ["handoff-primary", "handoff-secondary", "monthly-report", "weekly-followup"]


async def _schedules(client: Client) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules() if s.id in EXPECTED])


async def _exactly(client: Client, queue: str) -> bool:
    if await _schedules(client) != EXPECTED:
        return False
    for sid in EXPECTED:
        action = (await client.get_schedule_handle(sid).describe()).schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.task_queue != queue:
            return False
    return True


async def test_schedules_survive_server_and_worker_restarts(
    default_policy: Policy, tmp_path: Path
) -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    db = tmp_path / "temporal.db"
    queue = f"fw-ho-{uuid.uuid4().hex[:8]}"
    env = worker_env(
        target, tmp_path / "data", write_policy(default_policy, tmp_path / "p.yaml"), queue
    )
    procs: list[Proc] = []
    try:
        server = dev_server_process(db, port, tmp_path / "server-1.log").start()
        procs.append(server)
        client = await connect_when_up(target, server)
        worker = worker_process(env, tmp_path / "worker-1.log").start()
        procs.append(worker)
        await wait_polling(client, queue, worker)
        await wait_for(
            lambda: _exactly(client, queue), timeout=30, what="the schedules after start-up"
        )
        made = next(
            ln for ln in log_tail(worker.log, 200).splitlines() if "root: schedules: " in ln
        )
        assert sorted(made.split("root: schedules: ")[1].split(", ")) == EXPECTED

        assert worker.terminate() == 0, log_tail(worker.log)
        assert server.terminate() == 0, log_tail(server.log)
        server = dev_server_process(db, port, tmp_path / "server-2.log").start()
        procs.append(server)
        client = await connect_when_up(target, server)
        worker = worker_process(env, tmp_path / "worker-2.log").start()
        procs.append(worker)
        await wait_polling(client, queue, worker)
        await wait_for(
            lambda: _exactly(client, queue), timeout=30, what="the schedules after the restart"
        )
        assert "schedule handoff-primary updated" in log_tail(worker.log, 200)
    finally:
        for proc in reversed(procs):
            proc.close()
