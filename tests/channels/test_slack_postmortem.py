"""``/incident action add|close|verify`` signed as Slack signs it, against a real worker:
each command answers ephemerally, a refused one with its reason, changing nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import Client

from domain.ids import postmortem_workflow_id
from domain.policy import Policy
from domain.postmortem import ItemStatus, Stage
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack
from tests.channels.stack import Stack, firewatch_stack
from tests.channels.test_slack_interactions import SLACK_IDS, command, open_p1
from worker import ACTIVITY_THREADS
from workflows.postmortem import PostMortemInput, PostMortemState, PostMortemWorkflow


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
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = channel_settings(slack=slack)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with firewatch_stack(
            namespace_client, default_policy, tmp_path_factory.mktemp("pm-slack"), settings, pool
        ) as s:
            yield s


async def test_action_items_from_slack(
    stack: Stack, slack: FakeSlack, default_policy: Policy
) -> None:
    incident, opened = await open_p1(stack)
    inc = opened.incident_id or ""
    postmortem = await stack.client.start_workflow(
        PostMortemWorkflow.run,
        PostMortemInput(
            incident=opened,
            policy=default_policy,
            review_at=datetime.now(UTC) + timedelta(hours=20),
        ),
        id=postmortem_workflow_id(inc),
        task_queue=stack.queue,
    )
    zone = ZoneInfo(default_policy.business_hours.timezone)
    due = (datetime.now(UTC).astimezone(zone).date() + timedelta(days=7)).isoformat()

    async def say(user: str, text: str) -> str:
        response = await command(stack, user, text, slack)
        assert response.status_code == 200
        answer: str = response.json()["text"]
        return answer

    added = await say(
        "U0ERIN", f'action add {inc} dave {due} monitoring "Alert on pool saturation"'
    )
    assert added == f"✅ Added #1 Alert on pool saturation (dave, due {due})."
    # The draft is written and the review scheduled on their own: wait until that is done,
    # so that "nothing changed" below compares like with like.
    before: PostMortemState = await postmortem.query(PostMortemWorkflow.state)
    for _ in range(200):
        if before.stage == Stage.REVIEW_SCHEDULED:
            break
        await asyncio.sleep(0.05)
        before = await postmortem.query(PostMortemWorkflow.state)
    assert before.stage == Stage.REVIEW_SCHEDULED
    refused = [
        (f"action add {inc} mallory {due} monitoring x", "owner 'mallory' is not on the roster"),
        (f"action add {inc} dave 2020-01-01 monitoring x", "due date 2020-01-01 is in the past"),
        (f"action add {inc} dave {due} docs x", "unknown kind 'docs'"),
        (f"action add {inc} dave soon training x", "give the due date as YYYY-MM-DD"),
        (f"action close {inc} 1", "needs evidence"),
        (f"action verify {inc} 1", "is open: close it with evidence first"),
        ("action frobnicate", "/incident action add"),
    ]
    for text, reason in refused:
        answer = await say("U0ERIN", text)
        assert answer.startswith("⚠️") and reason in answer, (text, answer)
    assert await postmortem.query(PostMortemWorkflow.state) == before

    closed = await say("U0DAVE", f"action close {inc} 1 https://grafana.example/d/pool")
    assert closed == f"✅ Closed #1 Alert on pool saturation (dave, due {due})."
    own = await say("U0DAVE", f"action verify {inc} 1")
    assert own == "⚠️ action item #1 must be verified by someone other than its owner (dave)"
    verified = await say("U0ERIN", f"action verify {inc} 1")
    assert verified == f"✅ Verified #1 Alert on pool saturation (dave, due {due})."
    state: PostMortemState = await postmortem.query(PostMortemWorkflow.state)
    [item] = state.items
    assert (item.status, item.verified_by, item.evidence) == (
        ItemStatus.VERIFIED,
        "erin",
        "https://grafana.example/d/pool",
    )
    await postmortem.terminate("test over")
    await incident.terminate("test over")
