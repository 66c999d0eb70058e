"""``firewatch postmortem|postmortems|action|actions`` against the real stack (API, worker,
Temporal dev server): a P1's post-mortem from the review to its last verified item, and
each bad request refused with a one-line reason, changing nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.policy import Policy
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api, unique
from workflows.followup import FollowUpInput, WeeklyFollowUpWorkflow


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    data = tmp_path_factory.mktemp("pm-data")
    async with running_api(dev_env, api_policy(default_policy), data, "pm") as env:
        yield env.stack


@pytest.fixture
def firewatch(stack: ApiStack, tmp_path: Path) -> CliRun:
    return cli_against(stack, tmp_path)


def _ok(firewatch: CliRun, *args: str) -> str:
    result = firewatch(*args)
    assert result.exit_code == 0, (args, result.output)
    return str(result.stdout)


def _json(firewatch: CliRun, *args: str) -> Any:
    return json.loads(_ok(firewatch, *args, "--json"))


def _refused(firewatch: CliRun, reason: str, *args: str) -> None:
    result = firewatch(*args)
    assert result.exit_code != 0, (args, result.output)
    assert reason in result.stderr, result.stderr
    assert result.stderr.startswith("firewatch: ") and result.stderr.count("\n") == 1


def _resolved_p1(firewatch: CliRun) -> str:
    service = unique("pm")
    inc = _ok(
        firewatch, "trigger", "--service", service, "--severity", "P1", "--summary", "Pool"
    ).strip()
    _ok(firewatch, "ack", inc, "--by", "alice")
    _ok(
        firewatch,
        "resolve",
        inc,
        "--root-cause",
        "Pool exhausted",
        "--fix",
        "Bigger pool",
        "--by",
        "alice",
    )
    deadline = time.monotonic() + 30
    while True:  # the post-mortem child writes its draft first
        result = firewatch("postmortem", "show", inc, "--json")
        if result.exit_code == 0 and json.loads(result.stdout)["stage"] == "review_scheduled":
            return inc
        assert time.monotonic() < deadline, result.output
        time.sleep(0.2)


def test_a_postmortem_followed_through_from_the_cli(
    firewatch: CliRun, stack: ApiStack, default_policy: Policy
) -> None:
    inc = _resolved_p1(firewatch)
    today = datetime.now(UTC).astimezone(ZoneInfo(default_policy.business_hours.timezone)).date()
    in_a_week, in_ten_days = str(today + timedelta(days=7)), str(today + timedelta(days=10))

    later = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    moved = _ok(
        firewatch, "postmortem", "reschedule", inc, "--at", later.isoformat(), "--by", "erin"
    )
    assert moved == f"Review of {inc} moved to {later:%Y-%m-%d %H:%M} UTC; attendees told\n"
    # Without an offset, the team's time (New York), as for overrides: not UTC.
    local = later + timedelta(hours=1)
    typed = local.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None).isoformat()
    moved = _ok(firewatch, "postmortem", "reschedule", inc, "--at", typed, "--by", "erin")
    assert moved == f"Review of {inc} moved to {local:%Y-%m-%d %H:%M} UTC; attendees told\n"
    _ok(
        firewatch,
        "postmortem",
        "meeting",
        inc,
        "--by",
        "erin",
        "--timeline",
        "Ack in 2 minutes",
        "--went-well",
        "Fast acknowledgement",
        "--improve",
        "No alert on pool saturation",
    )
    added = _ok(
        firewatch,
        "action",
        "add",
        inc,
        "--owner",
        "dave",
        "--due",
        in_a_week,
        "--kind",
        "monitoring",
        "Alert on pool saturation",
    )
    assert added == (
        f"Added to {inc}: #1 Alert on pool saturation · dave · due {in_a_week}"
        " · monitoring · open\n"
    )
    _ok(
        firewatch,
        "action",
        "add",
        inc,
        "--owner",
        "carol",
        "--due",
        in_ten_days,
        "--kind",
        "Runbook update",
        "Pool runbook",
        "--by",
        "erin",
    )
    _ok(
        firewatch,
        "action",
        "close",
        inc,
        "1",
        "--evidence",
        "https://grafana/d/pool",
        "--by",
        "dave",
    )

    # Bad requests: each refused with its reason, and nothing changes.
    before = (
        _json(firewatch, "postmortem", "show", inc),
        _json(firewatch, "actions", "--incident", inc),
    )
    add = ("action", "add", inc, "--due", in_a_week, "--kind", "training", "Drill")
    _refused(firewatch, "owner 'mallory' is not on the roster", *add, "--owner", "mallory")
    _refused(
        firewatch,
        "due date 2020-01-01 is in the past",
        "action", "add", inc, "--owner", "dave", "--due", "2020-01-01", "--kind", "training", "x",
    )  # fmt: skip
    _refused(
        firewatch,
        "must be verified by someone other than its owner (dave) (HTTP 409)",
        "action", "verify", inc, "1", "--by", "dave",
    )  # fmt: skip
    _refused(
        firewatch,
        "cannot complete: action item #1 is not verified; action item #2 is open",
        "postmortem", "complete", inc, "--by", "erin",
    )  # fmt: skip
    _refused(firewatch, "unknown kind 'docs'", *add[:-3], "--kind", "docs", "x", "--owner", "dave")
    after = (
        _json(firewatch, "postmortem", "show", inc),
        _json(firewatch, "actions", "--incident", inc),
    )
    assert after == before

    _ok(firewatch, "action", "verify", inc, "1", "--by", "erin")
    carols = _json(firewatch, "actions", "--owner", "carol")
    assert [(r["incident_id"], r["number"], r["status"]) for r in carols] == [(inc, 2, "open")]
    assert inc not in {r["incident_id"] for r in _json(firewatch, "actions", "--overdue")}
    listed = _ok(firewatch, "postmortems", "--open")
    [row] = [line for line in listed.splitlines() if line.startswith(inc)]
    assert row.split()[1:3] == ["P1", "action_items"] and " 1/2 " in row

    _ok(
        firewatch,
        "action",
        "edit",
        inc,
        "2",
        "--due",
        str(today + timedelta(days=12)),
        "--by",
        "erin",
    )
    _ok(
        firewatch,
        "action",
        "close",
        inc,
        "2",
        "--evidence",
        "runbooks/api.md#pool",
        "--by",
        "carol",
    )
    verified = _ok(firewatch, "action", "verify", inc, "2", "--by", "frank")
    assert verified.startswith(f"Verified in {inc}: #2 Pool runbook · carol")
    assert inc not in _ok(firewatch, "postmortems", "--open")
    [done] = [r for r in _json(firewatch, "postmortems") if r["incident_id"] == inc]
    assert (done["stage"], done["items_open"], done["completed_by"]) == ("complete", 0, "frank")
    _refused(
        firewatch, f"no open post-mortem for {inc}", "action", "verify", inc, "2", "--by", "erin"
    )

    shown = _ok(firewatch, "postmortem", "show", inc).splitlines()
    assert shown[0] == f"Post-mortem {inc}: Complete · 0 open of 2"
    assert "  what went well         Fast acknowledgement" in shown
    assert shown[-1].startswith("  #2 Pool runbook · carol · due ")
    listed = _ok(firewatch, "actions", "--incident", inc).splitlines()
    assert listed[0].split() == ["ITEM", "OWNER", "DUE", "KIND", "STATUS", "TITLE"]
    assert listed[1].split()[:3] == [inc, "#1", "dave"] and "verified" in listed[1]

    told = {(n.kind, n.recipient) for n in Store(stack.data).notifications(inc, limit=500)}
    assert {
        ("postmortem_rescheduled", "erin"),
        ("action_item_assigned", "dave"),
        ("action_item_assigned", "carol"),
        ("action_item_closed", "erin"),
        ("postmortem_completed", "frank"),
    } <= told


async def test_the_weekly_followup_lists_items_unfinished_postmortems_and_open_p3s(
    firewatch: CliRun, stack: ApiStack
) -> None:
    inc = _resolved_p1(firewatch)
    today = datetime.now(ZoneInfo("America/New_York")).date()
    _ok(
        firewatch,
        "action",
        "add",
        inc,
        "Alert on pool saturation",
        "--owner",
        "dave",
        "--due",
        str(today + timedelta(days=3)),
        "--kind",
        "monitoring",
    )
    p3 = _ok(
        firewatch,
        "trigger",
        "--service",
        unique("p3"),
        "--severity",
        "P3",
        "--summary",
        "Typo on the pricing page",
    ).strip()

    deadline = time.monotonic() + 30
    while True:  # the P3 reaches visibility a moment after it opens
        text = _ok(firewatch, "followup")
        if p3 in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.3)
    assert text.startswith("📋 **Weekly follow-up - MadPlan - ")
    due = f"{today + timedelta(days=3):%a %d %b}"
    assert f"- Dave Dahl:\n  - due {due}: Alert on pool saturation ({inc} #1)" in text
    assert f"- {inc} Pool: missing meeting and lessons learned" in text
    assert "Typo on the pricing page · Triggered" in text

    # The scheduled run sends that digest to #engineering and the team lead, once each.
    client = await Client.connect(
        stack.target, namespace=stack.namespace, data_converter=pydantic_data_converter
    )
    run = str(uuid.uuid4())
    for _ in range(2):  # a second run the same week sends nothing more
        await client.execute_workflow(
            WeeklyFollowUpWorkflow.run,
            FollowUpInput(from_schedule=False),
            id=f"followup/test-{run}",
            task_queue=stack.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    sent = [n for n in Store(stack.data).notifications(limit=1000) if n.kind == "weekly_followup"]
    assert sorted(n.recipient for n in sent) == ["#engineering", "erin"]
    assert p3 in sent[0].text and inc in sent[0].text


async def test_ticket_edits_after_resolution_reach_the_postmortem_document(
    firewatch: CliRun, stack: ApiStack
) -> None:
    """Responders often fill Prevention and Lessons in after the incident closed: the open
    post-mortem's document shows those edits next to the meeting's notes."""
    inc = _resolved_p1(firewatch)
    shown = _json(firewatch, "show", inc)
    client = await Client.connect(
        stack.target, namespace=stack.namespace, data_converter=pydantic_data_converter
    )
    await client.get_workflow_handle(shown["workflow_id"]).result()  # the incident has closed
    _ok(firewatch, "postmortem", "meeting", inc, "--by", "erin", "--went-well", "Clean rollback")
    _ok(
        firewatch,
        "ticket",
        inc,
        "--by",
        "alice",
        "--what-went-well",
        "Paged within a minute",
        "--process-changes",
        "Pool review each quarter",
    )

    def document() -> str:
        return _ok(firewatch, "document", inc, "--postmortem")

    deadline = time.monotonic() + 30
    while "Pool review each quarter" not in (text := document()):
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert "- **What Went Well**: Paged within a minute; Clean rollback\n" in text
    assert "- **Process Changes**: Pool review each quarter\n" in text
