"""Slack buttons, the Resolve modal and /incident, signed exactly as Slack signs them.

A real worker delivers through the local Slack server; the API runs in process. Each
request is checked by the workflow state that follows: a good signature acts, a bad
signature, a stale timestamp or a user who is not on the roster change nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from activities.channels.slack import ACTION_ACK, ACTION_ESCALATE, ACTION_RESOLVE, button_value
from domain.incident import IncidentState, Status
from domain.policy import Policy, Roster
from starter.api.slack import TICKET_TEXTS
from starter.incidents import open_or_join
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack
from tests.channels.stack import (
    Stack,
    block_action,
    firewatch_stack,
    slack_headers,
    slash_command,
    view_submission,
)
from tests.workflows.helpers import make_alert, state_of
from worker import ACTIVITY_THREADS
from workflows.incident import IncidentWorkflow

SLACK_IDS = {
    "alice": "U0ALICE",
    "bob": "U0BOB",
    "carol": "U0CAROL",
    "dave": "U0DAVE",
    "erin": "U0ERIN",
    "frank": "U0FRANK",
}


def without_slack_id(policy: Policy, name: str) -> Policy:
    """Frank has only his email in the policy: he is found through users.lookupByEmail."""
    people = tuple(
        p.model_copy(update={"slack_user_id": None}) if p.name == name else p
        for p in policy.roster.people
    )
    roster = Roster.model_validate(
        {**policy.roster.model_dump(), "people": [p.model_dump() for p in people]}
    )
    return policy.model_copy(update={"roster": roster})


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        assert isinstance(fake, FakeSlack)
        for name, uid in SLACK_IDS.items():
            fake.add_user(uid, f"{name}@madplan.example")
        fake.add_user("U0OUTSIDER", "mallory@elsewhere.example")
        yield fake


@pytest.fixture(scope="module")
async def stack(
    namespace_client: Client,
    default_policy: Policy,
    slack: FakeSlack,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = channel_settings(slack=slack)
    policy = without_slack_id(default_policy, "frank")
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with firewatch_stack(
            namespace_client, policy, tmp_path_factory.mktemp("slack-data"), settings, pool
        ) as s:
            yield s


async def open_p1(
    stack: Stack, severity: str = "P1"
) -> tuple[WorkflowHandle[Any, Any], IncidentState]:
    handle = await open_or_join(stack.client, make_alert(severity), task_queue=stack.queue)
    st: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
    st = await wait_state(handle, lambda s: bool(s.pages))
    return handle, st


async def wait_state(
    handle: WorkflowHandle[Any, Any], ok: Any, timeout: float = 15
) -> IncidentState:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await state_of(handle)
        if ok(st):
            return st
        assert asyncio.get_running_loop().time() < deadline, st.model_dump_json()[:1500]
        await asyncio.sleep(0.05)


async def wait_for(probe: Any, timeout: float = 15) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def click(stack: Stack, body: bytes, **kw: Any) -> int:
    response = await stack.http.post(
        "/slack/interactions", content=body, headers=slack_headers(body, **kw)
    )
    return response.status_code


def responses_to(slack: FakeSlack, name: str) -> list[str]:
    return [r["text"] for r in slack.responses if r["url"] == f"/response/{name}"]


def incident_message(slack: FakeSlack, incident_id: str) -> Any:
    for msg in slack.messages("incidents"):
        if (
            msg.thread_ts is None
            and msg.metadata
            and msg.metadata["event_payload"]["incident_id"] == incident_id
        ):
            return msg
    return None


async def test_ack_button_acknowledges_and_the_message_is_edited(
    stack: Stack, slack: FakeSlack
) -> None:
    handle, st = await open_p1(stack)
    paged = st.pages[0].person
    value = button_value(st.workflow_id, st.incident_id or "")
    message = await wait_for(lambda: incident_message(slack, st.incident_id or ""))
    assert [e["action_id"] for e in message.blocks[-1]["elements"]] == [
        ACTION_ACK,
        ACTION_ESCALATE,
        ACTION_RESOLVE,
    ]

    body = block_action(SLACK_IDS[paged], ACTION_ACK, value, slack.response_url("ack1"))
    assert await click(stack, body) == 200
    st = await state_of(handle)
    assert st.status == Status.INVESTIGATING and st.acknowledged_by == paged
    assert await wait_for(lambda: responses_to(slack, "ack1")) == [
        f"✅ You acknowledged {st.incident_id}."
    ]

    label = {
        "alice": "Alice Andersen",
        "bob": "Bob Berg",
        "carol": "Carol Christensen",
        "dave": "Dave Dahl",
    }[paged]
    edited = await wait_for(
        lambda: (
            (m := incident_message(slack, st.incident_id or ""))
            and "Acknowledged by" in m.text
            and m
        )
    )
    assert f"Acknowledged by {label}" in edited.text
    assert any(f"Acknowledged by {label}" in json.dumps(b) for b in edited.blocks)
    assert ACTION_ACK not in json.dumps(edited.blocks)  # acknowledged: the button is gone

    # The ack also goes into the message's thread (a separate delivery from the edit).
    def ack_in_thread() -> bool:
        thread = [m for m in slack.messages("incidents") if m.thread_ts == edited.ts]
        return any(
            m.metadata["event_payload"]["key"].endswith(":ack:#incidents:slack") for m in thread
        )

    assert await wait_for(ack_in_thread)
    await handle.terminate("test over")


async def test_bad_signature_stale_timestamp_and_strangers_change_nothing(
    stack: Stack, slack: FakeSlack
) -> None:
    handle, st = await open_p1(stack)
    value = button_value(st.workflow_id, st.incident_id or "")
    paged_id = SLACK_IDS[st.pages[0].person]

    body = block_action(paged_id, ACTION_ACK, value, slack.response_url("bad"))
    response = await stack.http.post(
        "/slack/interactions", content=body, headers=slack_headers(body, bad=True)
    )
    assert response.status_code == 401 and "invalid Slack signature" in response.json()["detail"]

    body = block_action(paged_id, ACTION_ACK, value, slack.response_url("stale"))
    response = await stack.http.post(
        "/slack/interactions", content=body, headers=slack_headers(body, age_s=6 * 60)
    )
    assert response.status_code == 401 and "stale" in response.json()["detail"]

    tampered = block_action(paged_id, ACTION_ACK, value, slack.response_url("tampered"))
    headers = slack_headers(block_action(paged_id, ACTION_ESCALATE, value, slack.response_url("x")))
    assert (
        await stack.http.post("/slack/interactions", content=tampered, headers=headers)
    ).status_code == 401

    body = block_action("U0OUTSIDER", ACTION_ACK, value, slack.response_url("stranger"))
    assert await click(stack, body) == 200
    [refusal] = await wait_for(lambda: responses_to(slack, "stranger"))
    assert "not on the Firewatch roster" in refusal

    # The refusal is the handler's last word: nothing was sent to the workflow.
    after = await state_of(handle)
    assert after.status == Status.TRIGGERED and after.acknowledged_by is None
    assert [e.kind for e in after.timeline].count("status") == 0
    assert responses_to(slack, "bad") == responses_to(slack, "stale") == []
    await handle.terminate("test over")


async def test_double_click_is_harmless(stack: Stack, slack: FakeSlack) -> None:
    handle, st = await open_p1(stack)
    value = button_value(st.workflow_id, st.incident_id or "")
    user = SLACK_IDS[st.pages[0].person]
    codes = await asyncio.gather(
        click(stack, block_action(user, ACTION_ESCALATE, value, slack.response_url("dc1"))),
        click(stack, block_action(user, ACTION_ESCALATE, value, slack.response_url("dc2"))),
    )
    assert codes == [200, 200]
    # The repeat was swallowed before its 200 (RecentActions); the click that went through
    # answers on its response URL once its update has come back: then both are settled.
    await wait_for(lambda: responses_to(slack, "dc1") or responses_to(slack, "dc2"))
    st = await state_of(handle)
    assert [e.kind for e in st.timeline].count("escalate") == 1
    # The same interaction delivered twice by Slack (a retry) is one update too.
    body = block_action(
        user, ACTION_ACK, value, slack.response_url("retry"), trigger_id="111.retry"
    )
    assert await click(stack, body) == 200
    assert await click(stack, body) == 200
    st = await state_of(handle)
    assert [e.text for e in st.timeline].count(
        f"Incident acknowledged by {st.assignee and _label(st.assignee)}"
    ) == 1
    await handle.terminate("test over")


def _label(name: str) -> str:
    return {
        "alice": "Alice Andersen",
        "bob": "Bob Berg",
        "carol": "Carol Christensen",
        "dave": "Dave Dahl",
    }.get(name, name)


async def test_resolve_button_opens_the_modal_and_the_submission_resolves(
    stack: Stack, slack: FakeSlack
) -> None:
    handle, st = await open_p1(stack, "P2")
    value = button_value(st.workflow_id, st.incident_id or "")
    user = SLACK_IDS[st.pages[0].person]
    trigger = "222.resolve"
    slack.valid_triggers.add(trigger)
    assert (
        await click(
            stack, block_action(user, ACTION_RESOLVE, value, slack.response_url("res"), trigger)
        )
        == 200
    )
    view = slack.views[-1]
    assert view["callback_id"] == "firewatch_resolve"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "root_cause",
        "fix",
        *TICKET_TEXTS,
        "data_loss",
        "detection_method",
        "customer_impact_hours",
        "false_positive",
    ]
    assert json.loads(view["private_metadata"])["i"] == st.incident_id

    values = {
        "root_cause": {"value": {"type": "plain_text_input", "value": "Connection pool exhausted"}},
        "fix": {"value": {"type": "plain_text_input", "value": "Raised the pool size"}},
        "false_positive": {"value": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
        # The Incident Report's fields, filled in on the same form.
        "user_impact": {"value": {"type": "plain_text_input", "value": "Checkout slow for all"}},
        "data_loss": {"value": {"type": "static_select", "selected_option": {"value": "no"}}},
        "detection_method": {
            "value": {"type": "static_select", "selected_option": {"value": "User Report"}}
        },
        "customer_impact_hours": {"value": {"type": "number_input", "value": "2.5"}},
    }
    # Someone off the roster cannot submit it.
    stranger = view_submission("U0OUTSIDER", view, values)
    response = await stack.http.post(
        "/slack/interactions", content=stranger, headers=slack_headers(stranger)
    )
    assert response.json()["response_action"] == "errors"
    assert (await state_of(handle)).is_open

    body = view_submission(user, view, values)
    response = await stack.http.post(
        "/slack/interactions", content=body, headers=slack_headers(body)
    )
    assert response.status_code == 200 and response.content == b""  # closes the modal
    st = await wait_state(handle, lambda s: not s.is_open)
    assert st.root_cause == "Connection pool exhausted" and st.fix == "Raised the pool size"
    assert st.false_positive and st.resolved_by == st.pages[0].person
    assert (st.ticket.user_impact, st.ticket.data_loss, st.ticket.customer_impact_hours) == (
        "Checkout slow for all",
        False,
        2.5,
    )
    assert st.ticket.detection_method == "User Report" and st.ticket.business_impact is None
    # Submitting again: the workflow says it is resolved already, shown in the form.
    again = await stack.http.post("/slack/interactions", content=body, headers=slack_headers(body))
    assert again.status_code in (200,)
    final = await wait_for(
        lambda: (m := incident_message(slack, st.incident_id or "")) and "Resolved" in m.text and m
    )
    assert "Incident Resolved" in json.dumps(
        final.blocks
    ) and "firewatch_actions" not in json.dumps(final.blocks)


async def command(
    stack: Stack, user: str, text: str, slack: FakeSlack, name: str = "cmd", **kw: Any
) -> Any:
    body = slash_command(user, text, slack.response_url(name))
    return await stack.http.post("/slack/commands", content=body, headers=slack_headers(body, **kw))


async def test_incident_command_declare_update_ack(stack: Stack, slack: FakeSlack) -> None:
    response = await command(stack, "U0ERIN", 'declare P1 api "Checkout p99 over 5s"', slack)
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral" and body["text"].startswith("🚨 Declared INC-")
    incident_id = body["text"].split()[2].rstrip(":")

    async def visible() -> IncidentState | None:
        async for execution in stack.client.list_workflows(f"IncidentId = '{incident_id}'"):
            found: IncidentState = await stack.client.get_workflow_handle(execution.id).query(
                IncidentWorkflow.state
            )
            return found
        return None

    st = None
    for _ in range(100):  # visibility lags the workflow by a moment
        if (st := await visible()) is not None:
            break
        await asyncio.sleep(0.1)
    assert st is not None and st.summary == "Checkout p99 over 5s" and st.source == "slack"
    handle = stack.client.get_workflow_handle(st.workflow_id)

    response = await command(
        stack, "U0ERIN", f'update {incident_id} "Rolled back the deploy"', slack
    )
    assert response.json()["text"] == f"📊 Update posted to {incident_id}."
    st = await state_of(handle)
    assert st.last_update_text == "Rolled back the deploy" and st.acknowledged_by == "erin"

    response = await command(stack, "U0BOB", f"ack {incident_id}", slack)
    assert response.json()["text"] == f"{incident_id} was already acknowledged by erin."

    # Frank has no Slack id in the policy: found through users.lookupByEmail.
    response = await command(stack, "U0FRANK", f'update {incident_id} "DB looks fine"', slack)
    assert response.json()["text"] == f"📊 Update posted to {incident_id}."
    assert "frank" in (await state_of(handle)).responders
    assert slack.calls_to("users.lookupByEmail")

    response = await command(stack, "U0OUTSIDER", f"ack {incident_id}", slack)
    assert "not on the Firewatch roster" in response.json()["text"]
    response = await command(stack, "U0ERIN", "frobnicate", slack)
    assert response.json()["text"].startswith("Usage:")
    response = await command(stack, "U0ERIN", f"ack {incident_id}", slack, bad=True)
    assert response.status_code == 401
    response = await command(stack, "U0ERIN", f"ack {incident_id}", slack, age_s=301)
    assert response.status_code == 401
    await handle.terminate("test over")


async def test_war_room_for_p1_with_responders_invited(stack: Stack, slack: FakeSlack) -> None:
    handle, st = await open_p1(stack)
    name = (st.incident_id or "").lower()
    room = await wait_for(lambda: slack.channel(name))
    paged = SLACK_IDS[st.pages[0].person]
    await wait_for(lambda: paged in room.members)
    assert (
        len(
            [
                c
                for c in slack.calls_to("conversations.create", ok_only=True)
                if c.request.params["name"] == name
            ]
        )
        == 1
    )
    message = await wait_for(lambda: incident_message(slack, st.incident_id or ""))
    await wait_for(
        lambda: f"<#{room.id}>" in json.dumps(incident_message(slack, st.incident_id or "").blocks)
    )
    assert message is not None
    await handle.terminate("test over")


async def test_answers_within_3s_and_reports_late_outcomes_on_response_url(
    stack: Stack, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import starter.api.slack as slack_api

    handle, st = await open_p1(stack)
    value = button_value(st.workflow_id, st.incident_id or "")
    user = SLACK_IDS[st.pages[0].person]
    started = time.monotonic()
    assert (
        await click(stack, block_action(user, ACTION_ACK, value, slack.response_url("t1"))) == 200
    )
    assert time.monotonic() - started < 3

    # When Temporal is slower than Slack's 3 s, the answer comes first, the outcome later.
    monkeypatch.setattr(slack_api, "ANSWER_WITHIN_S", 0.0)
    response = await command(
        stack, user, f'update {st.incident_id} "Looking at the DB"', slack, "late"
    )
    assert response.json()["text"] == f"Working on {st.incident_id}…"
    [late] = await wait_for(lambda: responses_to(slack, "late"))
    assert late == f"📊 Update posted to {st.incident_id}."
    assert (await state_of(handle)).last_update_text == "Looking at the DB"
    await handle.terminate("test over")


async def test_incident_command_oncall_and_override(stack: Stack, slack: FakeSlack) -> None:
    response = await command(stack, "U0BOB", "oncall 2030-01-02T03:00", slack)
    text = response.json()["text"]
    assert text.splitlines()[0] == "*On call at Wed 02 Jan 03:00 EST*"
    assert "• Team Lead: Erin Eriksen" in text

    added = await command(
        stack, "U0BOB", 'override team_lead bob 2030-01-02T00:00 8h "covering Erin"', slack
    )
    assert added.json()["text"].startswith("✅ Added override #")
    assert "bob as Team Lead 2030-01-02 05:00 → 2030-01-02 13:00 UTC" in added.json()["text"]
    text = (await command(stack, "U0BOB", "oncall 2030-01-02T03:00", slack)).json()["text"]
    assert "• Team Lead: Bob Berg" in text

    clash = await command(stack, "U0ERIN", "override team_lead dave 2030-01-02T06:00 2h", slack)
    assert clash.json()["text"].startswith("⚠️ Not added: it overlaps override #")
    unknown = await command(stack, "U0ERIN", "override primary zed now 2h", slack)
    assert unknown.json()["text"] == (
        "⚠️ Not added: 'zed' is not on the roster (people: alice, bob, carol, dave, erin, frank)."
    )
    outsider = await command(stack, "U0OUTSIDER", "override primary bob now 2h", slack)
    assert "not on the Firewatch roster" in outsider.json()["text"]
