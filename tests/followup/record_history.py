"""Record the event history of a weekly follow-up run for the replay tests.

    .venv/bin/python -m tests.histories.record followup

On a dev server (the digest lists open P3s through visibility, which the time-skipping
server lacks): one P3 open, one run, its digest sent.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import BIN, SEARCH_ATTRIBUTES, load_default_policy, running_worker
from tests.workflows.helpers import open_incident
from worker import ACTIVITY_THREADS
from workflows.followup import FollowUpInput, WeeklyFollowUpWorkflow

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "weekly_followup.json"


async def main() -> None:
    os.environ.setdefault("FIREWATCH_WORKFLOW_SANDBOX", "1")
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
    try:
        with tempfile.TemporaryDirectory() as data, ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with running_worker(env.client, load_default_policy(), Path(data), pool) as (
                _,
                queue,
            ):
                await open_incident(env.client, queue, "P3", summary="Typo on the pricing page")
                handle = await env.client.start_workflow(
                    WeeklyFollowUpWorkflow.run,
                    FollowUpInput(),
                    id="followup/recorded",
                    task_queue=queue,
                )
                await handle.result()
                history = await handle.fetch_history()
    finally:
        await env.shutdown()
    HISTORY.write_text(json.dumps(history.to_json_dict(), indent=1))
    print(f"saved {HISTORY.name} ({len(history.events)} events)")
