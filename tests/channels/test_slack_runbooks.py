"""Runbooks from Slack: "Run diagnostics", the Mitigate… menu, Approve and Decline.

A real worker delivers through the local Slack server; a local health endpoint and deploy
tool stand in for the team's systems. Clicks are signed as Slack signs them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.client import Client

from activities.channels.slack import (
    ACTION_APPROVE,
    ACTION_DECLINE,
    ACTION_DIAGNOSE,
    ACTION_MITIGATE,
    button_value,
)
from domain.policy import Policy
from domain.runbooks import ProposalStatus
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack
from tests.channels.stack import Stack, block_action, firewatch_stack, select_action
from tests.channels.test_slack_interactions import (
    SLACK_IDS,
    click,
    incident_message,
    open_p1,
    responses_to,
    wait_for,
    wait_state,
)
from tests.policies import with_api_runbook
from tests.runbooks.servers import DeployTool, HealthServer
from worker import ACTIVITY_THREADS


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        assert isinstance(fake, FakeSlack)
        for name, uid in SLACK_IDS.items():
            fake.add_user(uid, f"{name}@madplan.example")
        yield fake


@pytest.fixture(scope="module")
async def stack(
    namespace_client: Client,
    default_policy: Policy,
    slack: FakeSlack,
    loopback_health: HealthServer,
    loopback_deploy_tool: DeployTool,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = channel_settings(slack=slack)
    policy = with_api_runbook(default_policy, loopback_health.url, loopback_deploy_tool.url)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with firewatch_stack(
            namespace_client, policy, tmp_path_factory.mktemp("slack-rb"), settings, pool
        ) as s:
            yield s


async def test_diagnose_mitigate_and_approve_from_slack(
    stack: Stack, slack: FakeSlack, loopback_deploy_tool: DeployTool
) -> None:
    handle, st = await open_p1(stack)
    incident_id = st.incident_id or ""
    # The first post becomes the incident message; its sync adds the runbook's controls.
    message = await wait_for(
        lambda: (
            (m := incident_message(slack, incident_id))
            and ACTION_DIAGNOSE in json.dumps(m.blocks)
            and m
        )
    )
    actions = message.blocks[-1]["elements"]
    assert [e["action_id"] for e in actions][-2:] == [ACTION_DIAGNOSE, ACTION_MITIGATE]
    assert [o["text"]["text"] for o in actions[-1]["options"]] == [
        "rollback: Roll back the latest deployment"
    ]
    # The diagnostics that ran at opening are posted in the incident's thread.
    st = await wait_state(handle, lambda s: s.latest_diagnostics is not None)
    thread = await wait_for(
        lambda: [m for m in slack.messages("incidents") if m.thread_ts == message.ts]
    )
    assert thread

    value = button_value(st.workflow_id, incident_id)
    body = block_action(SLACK_IDS["carol"], ACTION_DIAGNOSE, value, slack.response_url("rb1"))
    assert await click(stack, body) == 200
    assert await wait_for(lambda: responses_to(slack, "rb1")) == [
        f"🔎 Diagnostics #2 started for {incident_id}; results follow in the thread."
    ]
    await wait_state(handle, lambda s: s.latest_diagnostics and s.latest_diagnostics.number == 2)

    choice = button_value(st.workflow_id, incident_id, a="rollback")
    body = select_action(SLACK_IDS["carol"], ACTION_MITIGATE, choice, slack.response_url("mt1"))
    assert await click(stack, body) == 200
    assert await wait_for(lambda: responses_to(slack, "mt1")) == [
        "🛠 You proposed #1 rollback; it runs once approved."
    ]

    def proposal_message() -> object:
        for m in slack.messages("incidents"):
            if m.thread_ts == message.ts and ACTION_APPROVE in json.dumps(m.blocks):
                return m
        return None

    proposed = await wait_for(proposal_message)
    buttons = proposed.blocks[-1]["elements"]  # type: ignore[attr-defined]
    assert [b["action_id"] for b in buttons] == [ACTION_APPROVE, ACTION_DECLINE]
    decision = buttons[0]["value"]

    # The proposer cannot approve a high-risk action; nothing changes.
    body = block_action(SLACK_IDS["carol"], ACTION_APPROVE, decision, slack.response_url("ap1"))
    assert await click(stack, body) == 200
    (refusal,) = await wait_for(lambda: responses_to(slack, "ap1"))
    assert "another person must approve it (two-person rule)" in refusal
    assert (await wait_state(handle, lambda s: True)).mitigations[0].status == (
        ProposalStatus.PROPOSED
    )

    body = block_action(SLACK_IDS["dave"], ACTION_APPROVE, decision, slack.response_url("ap2"))
    assert await click(stack, body) == 200
    assert await wait_for(lambda: responses_to(slack, "ap2")) == [
        f"You approved #1 on {incident_id}."
    ]
    st = await wait_state(
        handle, lambda s: s.mitigations[0].status == ProposalStatus.SUCCEEDED, timeout=30
    )
    assert len(loopback_deploy_tool.executions("/rollback")) == 1
    await handle.terminate("test over")
