"""Replay saved histories against today's workflow code: a non-deterministic change fails here.

Histories are recorded by ``python -m tests.histories.record``; a change to workflow code
that alters the commands it issues must be guarded with ``workflow.patched``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner

from worker import SANDBOXED_RUNNER, WORKFLOWS

# Recorded with the current code. Firewatch is unreleased, so every workflow has one code
# path; after the first release, histories recorded before a patch go to histories/v1/ and
# must keep replaying (README: versioning).
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


@pytest.mark.parametrize("runner", RUNNERS, ids=str)
@pytest.mark.parametrize(
    "path",
    HISTORIES,
    ids=lambda p: f"{p.parent.name}/{p.stem}" if p.parent.name != "histories" else p.stem,
)
async def test_saved_history_replays(path: Path, runner: str) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=RUNNERS[runner], data_converter=pydantic_data_converter
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
