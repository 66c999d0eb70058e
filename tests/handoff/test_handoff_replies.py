"""The handoff's one-reply and one-click answers through the real channel stack: the test
page goes out by the local Twilio and Slack servers; an SMS ``TEST`` reply and the Slack
"Acknowledge test" button acknowledge them, an SMS ``CONFIRM`` confirms the contact details."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from activities.channels.handoff_slack import ACTION_ACK_TEST
from domain.handoff import HandoffResult
from domain.policy import Policy, Role
from tests.channels.conftest import channel_settings, namespace_client
from tests.channels.fake_slack import FakeSlack
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.stack import Stack, block_action, firewatch_stack, slack_headers
from tests.channels.test_twilio_replies import reply
from tests.handoff.test_handoff_workflow import _progress
from worker import ACTIVITY_THREADS
from workflows.handoff import AckTest, HandoffInput, HandoffWorkflow

PUBLIC = "https://hooks.example.org/fw"
__all__ = ["namespace_client"]  # the fixture


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        assert isinstance(fake, FakeTwilio)
        yield fake


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        assert isinstance(fake, FakeSlack)
        for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
            fake.add_user(f"U0{name.upper()}", f"{name}@madplan.example")
        yield fake


@pytest.fixture(scope="module")
async def stack(
    namespace_client: Client,
    default_policy: Policy,
    twilio: FakeTwilio,
    slack: FakeSlack,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = channel_settings(slack=slack, twilio=twilio, public_url=PUBLIC)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with firewatch_stack(
            namespace_client, default_policy, tmp_path_factory.mktemp("ho-data"), settings, pool
        ) as s:
            yield s


async def _eventually(probe: Any, what: str, tries: int = 300) -> Any:
    for _ in range(tries):
        found = probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def _page(handle: WorkflowHandle[Any, Any], method: str) -> Any:
    async def check() -> Any:
        result: HandoffResult = await handle.query(HandoffWorkflow.progress)
        return next(p for p in result.test_pages if p.method == method)

    return await check()


async def test_sms_reply_and_slack_button_acknowledge(
    stack: Stack, twilio: FakeTwilio, slack: FakeSlack, default_policy: Policy
) -> None:
    handle = await stack.client.start_workflow(
        HandoffWorkflow.run,
        HandoffInput(role=Role.PRIMARY),
        id=f"handoff/replies-{uuid.uuid4().hex[:8]}",
        task_queue=stack.queue,
    )
    progress = await _progress(handle)
    incoming = progress.report.incoming
    assert incoming.phone and incoming.slack_user_id
    sms = await _eventually(
        lambda: [m for m in twilio.sms_to(incoming.phone or "") if "Handoff test" in m["body"]],
        "the SMS test page",
    )
    assert "reply TEST to acknowledge" in sms[0]["body"]

    # Someone else's TEST changes nothing.
    other = next(p for p in default_policy.roster.people if p.name != incoming.name)
    answer = await reply(stack, other.phone or "", "TEST")
    assert "Nothing done" in answer.text and "no test page" in answer.text

    answer = await reply(stack, incoming.phone, "test")
    assert answer.status_code == 200
    assert "Test page acknowledged: SMS reaches" in answer.text
    page = await _page(handle, "sms")
    assert page.acked_via == "sms"

    def button() -> Any:
        for message in slack.messages(incoming.slack_user_id or ""):
            for block in message.blocks or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == ACTION_ACK_TEST:
                        return element
        return None

    element = await _eventually(button, "the Slack test page with its button")
    assert json.loads(element["value"])["m"] == "slack"
    body = block_action(
        incoming.slack_user_id, ACTION_ACK_TEST, element["value"], slack.response_url("ho")
    )
    response = await stack.http.post(
        "/slack/interactions", content=body, headers=slack_headers(body)
    )
    assert response.status_code == 200
    page = await _page(handle, "slack")
    assert page.acked_via == "slack"
    await _eventually(
        lambda: [r for r in slack.responses if "Test page acknowledged" in str(r.get("text"))],
        "the ephemeral answer",
    )

    answer = await reply(stack, incoming.phone, "CONFIRM")
    assert "Contact details confirmed" in answer.text
    await handle.execute_update(HandoffWorkflow.ack_test, AckTest(by=incoming.name, method="email"))
    result = await handle.result()
    assert result is not None
    assert result.unverified == []
    assert result.contact_confirmed_via == "sms"


async def test_a_test_page_by_hand_tries_each_contact_method(
    stack: Stack, twilio: FakeTwilio, slack: FakeSlack, default_policy: Policy
) -> None:
    """``POST /people/{name}/test-page``: each of the person's methods on its own, through the
    real senders; email has no server here, so it is in the outbox only, and says so."""
    from starter.secrets import ensure_secrets
    from workflows import test_page

    dave = default_policy.roster.person("dave")
    assert dave is not None and dave.phone and dave.contact_order == ("sms", "slack", "email")
    token = ensure_secrets(stack.data, default_policy).api_token
    response = await stack.http.post(
        "/people/dave/test-page", json={"by": "erin"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    result = test_page.TestPageResult.model_validate(response.json())
    assert [(o.method, o.status) for o in result.outcomes] == [
        ("sms", "sent"),
        ("slack", "sent"),
        ("email", "outbox"),
    ]
    expected = (
        "Firewatch test page for Dave Dahl via {}, sent at Erin Eriksen's request.\n"
        "This checks that pages reach you; there is nothing to acknowledge.\n"
    )
    # An SMS carries one line: the subject, with the delivery's reference.
    [sms] = [m for m in twilio.sms_to(dave.phone) if "test page for Dave Dahl" in m["body"]]
    assert re.fullmatch(
        r"\[Test\] Firewatch test page for Dave Dahl via SMS \(ref [0-9a-f]{10}\)", sms["body"]
    ), sms["body"]
    [post] = [p for p in slack.posts() if "test page for Dave Dahl via Slack" in str(p)]
    assert post["channel"] in ("U0DAVE", slack.dm("U0DAVE").id)
    # Slack: the subject as the notification text, the message in a section block.
    assert post["text"] == "[Test] Firewatch test page for Dave Dahl via Slack"
    assert post["blocks"][0]["text"]["text"].strip() == expected.format("Slack").strip()
    # Asked again: a new test, sent again (each request is its own workflow).
    again = await stack.http.post(
        "/people/dave/test-page", json={"by": "erin"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert again.status_code == 200, again.text
    assert len([m for m in twilio.sms_to(dave.phone) if "test page for Dave" in m["body"]]) == 2


async def test_a_test_page_needs_roster_people(stack: Stack, default_policy: Policy) -> None:
    from starter.secrets import ensure_secrets

    token = ensure_secrets(stack.data, default_policy).api_token
    headers = {"Authorization": f"Bearer {token}"}
    unknown = await stack.http.post("/people/zed/test-page", json={"by": "erin"}, headers=headers)
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "'zed' is not on the roster")
    stranger = await stack.http.post(
        "/people/dave/test-page", json={"by": "mallory"}, headers=headers
    )
    assert (stranger.status_code, stranger.json()["detail"]) == (
        422,
        "'mallory' is not on the roster",
    )
