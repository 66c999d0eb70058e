"""Record the event history of a heartbeat run for the replay tests (tests/test_replay.py).

    .venv/bin/python -m tests.histories.record heartbeat

One run, to its end: a ping, a miss (the incident opens), the next ping (it resolves), then
continue-as-new (after 2 pings here; 500 in production). Re-record only for a deliberate,
patched change, as tests/histories/record.py says.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from domain.heartbeats import heartbeat_incident_workflow_id, heartbeat_workflow_id
from domain.incident import Status
from tests.conftest import load_default_policy, running_worker, ts_environment
from tests.heartbeats.support import NIGHTLY, incident_when, with_heartbeats
from worker import ACTIVITY_THREADS
from workflows.heartbeat import HeartbeatInput, HeartbeatPing, HeartbeatWorkflow

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "heartbeat_missed_and_resolved.json"


async def main() -> None:
    os.environ.setdefault("FIREWATCH_WORKFLOW_SANDBOX", "1")
    policy = with_heartbeats(load_default_policy(), NIGHTLY)
    async with ts_environment() as env:
        client = env.client
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with running_worker(client, policy, Path(data), pool) as (_, queue):
                handle = await client.start_workflow(
                    HeartbeatWorkflow.run,
                    HeartbeatInput(monitor=NIGHTLY, continue_after_pings=2),
                    id=heartbeat_workflow_id(NIGHTLY.name),
                    task_queue=queue,
                    start_signal="ping",
                    start_signal_args=[HeartbeatPing(monitor=NIGHTLY)],
                )
                incident = heartbeat_incident_workflow_id(NIGHTLY.name)
                await env.sleep(timedelta(hours=26, minutes=1))
                await incident_when(client, incident, lambda s: s.incident_id is not None)
                await handle.signal(HeartbeatWorkflow.ping, HeartbeatPing(monitor=NIGHTLY))
                await incident_when(client, incident, lambda s: s.status == Status.RESOLVED)
                first = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
                for _ in range(200):  # until the run has continued as new
                    if (await first.describe()).status != 1:  # 1: running
                        break
                    await asyncio.sleep(0.05)
                history = await first.fetch_history()
    HISTORY.write_text(json.dumps(history.to_json_dict(), indent=1))
    print(f"saved {HISTORY.name} ({len(history.events)} events)")
