"""Replay saved histories against today's workflow code: a non-deterministic change fails here.

Histories are recorded by ``python -m tests.histories.record``; a change to workflow code
that alters the commands it issues must be guarded with ``workflow.patched``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner

from worker import SANDBOXED_RUNNER, WORKFLOWS

# histories/: recorded with the current code. histories/v1: recorded before a patch that is
# still in the code (the post-mortem's "batched-draft"), i.e. runs that were open when it
# shipped. Firewatch is unreleased, so the incident workflow has one code path and no v1.
HISTORIES = sorted((Path(__file__).parent / "histories").glob("**/*.json"))
RUNNERS: dict[str, WorkflowRunner] = {
    "sandboxed": SANDBOXED_RUNNER,
    "unsandboxed": UnsandboxedWorkflowRunner(),
}


def test_there_are_histories_for_each_workflow_type() -> None:
    types = {
        json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"][
            "workflowType"
        ]["name"]
        for p in HISTORIES
    }
    assert types == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize(("workflow", "patch"), [("postmortem", "batched-draft")])
def test_histories_cover_both_sides_of_each_patch(workflow: str, patch: str) -> None:
    # Marker payloads are base64 JSON in a saved history.
    marker = base64.b64encode(json.dumps(patch).encode()).decode()
    saved = [p for p in HISTORIES if p.stem.startswith(workflow)]
    legacy = [p for p in saved if p.parent.name == "v1"]
    current = [p for p in saved if p.parent.name != "v1"]
    assert legacy and current
    assert all(marker in p.read_text() for p in current)
    assert not any(marker in p.read_text() for p in legacy)


@pytest.mark.parametrize("runner", RUNNERS, ids=str)
@pytest.mark.parametrize(
    "path",
    HISTORIES,
    ids=lambda p: f"{p.parent.name}/{p.stem}" if p.parent.name == "v1" else p.stem,
)
async def test_saved_history_replays(path: Path, runner: str) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=RUNNERS[runner], data_converter=pydantic_data_converter
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
