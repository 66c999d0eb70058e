"""``firewatch`` against the real stack: HTTP API, worker and Temporal dev server.

test_cli.py checks the CLI's requests and output against a contract-shaped fake; these
check the same commands end to end, where lookups and the incident list really happen.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api, unique

T = TypeVar("T")


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    data = tmp_path_factory.mktemp("cli-data")
    async with running_api(dev_env, api_policy(default_policy), data, "cli") as env:
        yield env.stack


Run = CliRun


@pytest.fixture
def firewatch(stack: ApiStack, tmp_path: Path) -> Run:
    return cli_against(stack, tmp_path)


def _ticket(firewatch: CliRun, incident_id: str, containing: str) -> str | None:
    """The ticket's Markdown from ``firewatch document``, once it contains ``containing``."""
    shown = firewatch("document", incident_id)
    return shown.stdout if shown.exit_code == 0 and containing in shown.stdout else None


def until(probe: Callable[[], T | None], *, timeout: float = 20, every: float = 0.2) -> T:
    """Poll until ``probe`` returns something truthy (the list reads visibility, which lags)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")
        time.sleep(every)


def trigger(firewatch: Run, service: str, severity: str, summary: str) -> str:
    result = firewatch(
        "trigger", "--service", service, "--severity", severity, "--summary", summary
    )
    assert result.exit_code == 0, result.output
    incident_id = result.stdout.strip()
    assert incident_id.startswith("INC-"), result.stdout
    return incident_id


def test_show_and_act_right_after_trigger(firewatch: Run) -> None:
    """No sleep, no retry between the commands."""
    for n in range(3):
        service = unique("cli-now")
        inc = trigger(firewatch, service, "P2", f"payments slow {n}")
        shown = firewatch("show", inc)
        assert shown.exit_code == 0, shown.output
        assert shown.stdout.splitlines()[:2] == [
            f"{inc}  P2  Triggered  {service}",
            f"summary          payments slow {n}",
        ]
        as_json = json.loads(firewatch("show", inc, "--json").stdout)
        assert (as_json["incident_id"], as_json["summary"]) == (inc, f"payments slow {n}")
        ack = firewatch("ack", inc, "--by", "alice")
        assert ack.exit_code == 0, ack.output
    missing = firewatch("show", "INC-1999-12-31-001")
    assert missing.exit_code == 1
    assert missing.stderr == "firewatch: no incident INC-1999-12-31-001 (HTTP 404)\n"


def test_incidents_newest_first_with_summaries(firewatch: Run) -> None:
    service = unique("cli-list")
    first = trigger(firewatch, service, "P3", "disk 80% on db-1")
    second = trigger(firewatch, service, "P2", "queue backlog growing")
    third = trigger(firewatch, service, "P3", "certificate expires in 20 days")
    resolved = firewatch(
        "resolve", second, "--by", "alice", "--root-cause", "slow consumer", "--fix", "scaled"
    )
    assert resolved.exit_code == 0, resolved.output
    statuses = {first: "Triggered", second: "Resolved", third: "Triggered"}

    def listed(*args: str) -> list[dict[str, Any]]:
        result = firewatch("incidents", "--service", service, "--json", *args)
        assert result.exit_code == 0, result.output
        rows: list[dict[str, Any]] = json.loads(result.stdout)["incidents"]
        return rows

    def settled() -> list[dict[str, Any]] | None:
        rows = listed()
        return rows if {r["incident_id"]: r["status"] for r in rows} == statuses else None

    rows = until(settled)
    assert [(r["incident_id"], r["summary"]) for r in rows] == [
        (third, "certificate expires in 20 days"),
        (second, "queue backlog growing"),
        (first, "disk 80% on db-1"),
    ]
    table = firewatch("incidents", "--service", service).stdout.splitlines()
    assert table[0].split() == [
        *("ID", "SEV", "STATUS", "SERVICE", "ASSIGNEE", "OPENED", "(UTC)", "SUMMARY")
    ]
    summary_at = table[0].index("SUMMARY")
    assert [(line.split()[0], line[summary_at:]) for line in table[1:]] == [
        (third, "certificate expires in 20 days"),
        (second, "queue backlog growing"),
        (first, "disk 80% on db-1"),
    ]
    assert [r["incident_id"] for r in listed("--sort", "opened")] == [first, second, third]
    assert [r["incident_id"] for r in listed("--sort", "severity")] == [second, third, first]
    assert [r["incident_id"] for r in listed("--sort", "status", "--limit", "2")] == [
        third,
        first,
    ]
    bad = firewatch("incidents", "--sort", "priority")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "firewatch: sort must be one of -opened, opened, severity, status, not 'priority'\n"
    )


def test_updates_carry_next_steps_and_eta_and_the_ticket_is_filled_in(
    firewatch: Run, stack: ApiStack
) -> None:
    incident_id = trigger(firewatch, "api", "P2", f"Checkout errors {unique('t')}")
    assert firewatch("ack", incident_id, "--by", "alice").exit_code == 0
    posted = firewatch(
        "update",
        incident_id,
        "--by",
        "alice",
        "--message",
        "Rolled back 4812",
        "--next",
        "Watch the error rate for 15 minutes",
        "--eta",
        "14:30 UTC",
        "--json",
    )
    assert posted.exit_code == 0, posted.output
    state = json.loads(posted.stdout)
    assert (state["next_steps"], state["eta"]) == (
        "Watch the error rate for 15 minutes",
        "14:30 UTC",
    )

    filled = firewatch(
        "ticket",
        incident_id,
        "--by",
        "alice",
        "--user-impact",
        "Checkout failed for 3% of users",
        "--data-loss",
        "no",
        "--customer-impact-hours",
        "1.5",
        "--detection",
        "user-report",
        "--prevention-long-term",
        "Canary deploys",
        "--json",
    )
    assert filled.exit_code == 0, filled.output
    ticket = json.loads(filled.stdout)["ticket"]
    assert ticket["user_impact"] == "Checkout failed for 3% of users"
    assert (ticket["data_loss"], ticket["customer_impact_hours"]) == (False, 1.5)
    assert ticket["detection_method"] == "User Report" and ticket["workaround"] is None
    # A second edit changes only what it names.
    assert (
        firewatch("ticket", incident_id, "--by", "bob", "--workaround", "Rollback").exit_code == 0
    )
    shown = json.loads(firewatch("show", incident_id, "--json").stdout)
    assert shown["ticket"]["user_impact"] == "Checkout failed for 3% of users"
    assert shown["ticket"]["workaround"] == "Rollback"
    assert [e["text"] for e in shown["timeline"] if e["kind"] == "ticket"] == [
        "Ticket: user impact, data loss, customer impact hours, detection method,"
        " prevention long term set by Alice Andersen",
        "Ticket: workaround set by Bob Berg",
    ]

    # The ticket as the database holds it (`firewatch document`), and its SQLite mirror file.
    text = until(lambda: _ticket(firewatch, incident_id, "Rollback"))
    path = stack.data / "tickets" / f"{incident_id}.md"
    until(lambda: path.exists() and "Rollback" in path.read_text())
    assert "edits to this file are overwritten" in text
    assert "- **User Impact**: Checkout failed for 3% of users\n" in text
    assert "- **Data Loss**: No\n- **Customer Impact Hours**: 1.5\n" in text
    assert "- **Detection Method**: User Report\n" in text
    assert "2. **Temporary Workaround**: Rollback\n" in text

    # Bad input: nothing changes, one line says why.
    for args, reason in (
        (("--data-loss", "maybe"), "--data-loss must be yes or no"),
        (("--by", "mallory", "--workaround", "x"), "not on the roster"),
        ((), "give at least one field"),
    ):
        by = () if "--by" in args else ("--by", "alice")
        refused = firewatch("ticket", incident_id, *by, *args)
        assert refused.exit_code != 0 and reason in refused.output, refused.output
    unknown = firewatch("ticket", "INC-2020-01-01-999", "--by", "alice", "--workaround", "x")
    assert unknown.exit_code == 1 and "INC-2020-01-01-999" in unknown.output
    after = json.loads(firewatch("show", incident_id, "--json").stdout)
    assert after["ticket"] == shown["ticket"]


async def test_a_closed_incidents_ticket_can_still_be_filled_in(
    firewatch: Run, stack: ApiStack
) -> None:
    incident_id = trigger(firewatch, "api", "P3", f"Typo on pricing {unique('c')}")
    resolved = firewatch(
        "resolve", incident_id, "--by", "bob", "--root-cause", "Copy edit", "--fix", "Fixed"
    )
    assert resolved.exit_code == 0, resolved.output
    client = await Client.connect(
        stack.target, namespace=stack.namespace, data_converter=pydantic_data_converter
    )
    shown = json.loads(firewatch("show", incident_id, "--json").stdout)
    await client.get_workflow_handle(shown["workflow_id"]).result()  # its workflow has closed

    later = firewatch(
        "ticket",
        incident_id,
        "--by",
        "carol",
        "--what-went-well",
        "Found in review",
        "--data-loss",
        "no",
        "--json",
    )
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout)["ticket"]["what_went_well"] == "Found in review"
    again = firewatch("ticket", incident_id, "--by", "bob", "--workaround", "None needed")
    assert again.exit_code == 0, again.output
    # Shown with both edits, on the timeline with who made them.
    state = json.loads(firewatch("show", incident_id, "--json").stdout)
    assert (state["ticket"]["what_went_well"], state["ticket"]["workaround"]) == (
        "Found in review",
        "None needed",
    )
    assert [e["text"] for e in state["timeline"] if e["kind"] == "ticket"] == [
        "Ticket: data loss, what went well set by Carol Christensen",
        "Ticket: workaround set by Bob Berg",
    ]
    # The ticket is written again by the worker, with both: in the database, and mirrored.
    text = until(lambda: _ticket(firewatch, incident_id, "None needed"))
    path = stack.data / "tickets" / f"{incident_id}.md"
    until(lambda: "None needed" in path.read_text())
    assert "- **What Went Well**: Found in review\n" in text and "- **Data Loss**: No\n" in text
    assert "Ticket: workaround set by Bob Berg" in text
    # Refused as before: someone off the roster, or nothing to set; nothing is stored.
    refused = firewatch("ticket", incident_id, "--by", "mallory", "--workaround", "x")
    assert refused.exit_code == 1 and "'mallory' is not on the roster" in refused.output
    after = json.loads(firewatch("show", incident_id, "--json").stdout)
    assert after["ticket"] == state["ticket"]
