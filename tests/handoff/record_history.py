"""Record the event history of a handoff run for the replay tests (tests/test_replay.py).

    .venv/bin/python -m tests.histories.record handoff

One run, to its end: it sleeps until the next primary handoff, gathers the report, sends
it and the test pages, gets two acknowledgements and the contact confirmation, reports the
third method at the deadline, and posts the shift change. Re-record only for a deliberate,
patched change, as tests/histories/record.py says.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from domain import rotation
from domain.policy import Role
from tests.conftest import load_default_policy, running_worker, ts_environment
from tests.handoff.test_handoff_workflow import _progress
from worker import ACTIVITY_THREADS
from workflows.handoff import AckTest, ConfirmContact, HandoffInput, HandoffWorkflow

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "handoff_test_page.json"


async def main() -> None:
    os.environ.setdefault("FIREWATCH_WORKFLOW_SANDBOX", "1")
    policy = load_default_policy()
    async with ts_environment() as env:
        client = env.client
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with running_worker(client, policy, Path(data), pool) as (_, queue):
                handle = await client.start_workflow(
                    HandoffWorkflow.run,
                    HandoffInput(role=Role.PRIMARY, wait_for_handoff=True),
                    id="handoff/primary/recorded",
                    task_queue=queue,
                )
                now = await env.get_current_time()
                at, _ = rotation.next_handoffs(policy.roster.primary, now, 1)[0]
                await env.sleep(at - now + timedelta(minutes=1))
                progress = await _progress(handle)
                who = progress.report.incoming.name
                for method, via in (("sms", "sms"), ("slack", "slack")):
                    await handle.execute_update(
                        HandoffWorkflow.ack_test, AckTest(by=who, method=method, via=via)
                    )
                await handle.execute_update(
                    HandoffWorkflow.confirm_contact, ConfirmContact(by=who, via="cli")
                )
                await handle.result()
                history = await handle.fetch_history()
    HISTORY.write_text(json.dumps(history.to_json_dict(), indent=1))
    print(f"saved {HISTORY.name} ({len(history.events)} events)")
