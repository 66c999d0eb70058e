"""SlackSender against the local Slack Web API: shapes, error mapping, finding a post again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.channels import slack
from activities.channels.base import PermanentDeliveryError, TransientDeliveryError
from activities.channels.ledger import Ledger
from activities.channels.slack import ACTION_ACK, METADATA_EVENT, SlackSender
from domain.policy import Policy
from tests.channels.conftest import channel_settings, note_for, person
from tests.channels.fake_slack import FakeSlack


def sender(fake: FakeSlack, tmp_path: Path, **extra: object) -> SlackSender:
    return SlackSender(channel_settings(slack=fake, **extra), Ledger(tmp_path / "fw.db"))


async def test_dm_posts_to_the_user_with_key_metadata_and_buttons(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    alice = person(default_policy, "alice")
    note = note_for(alice).model_copy(update={"idempotency_key": "INC-1:page:alice:slack"})
    provider_id = await sender(fake_slack, tmp_path).send(note, "U0ALICE")

    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.request.header("Authorization") == "Bearer xoxb-test-token"
    assert "json" in (call.request.header("Content-Type") or "")
    body = call.request.params
    assert body["channel"] == "U0ALICE"
    assert body["metadata"] == {
        "event_type": METADATA_EVENT,
        "event_payload": {"key": "INC-1:page:alice:slack", "incident_id": "INC-2026-11-26-001"},
    }
    assert "*Incident ID*" in body["blocks"][0]["text"]["text"]  # **bold** → Slack mrkdwn
    assert body["blocks"][-1]["elements"][0]["action_id"] == ACTION_ACK
    [msg] = fake_slack.messages("U0ALICE")
    assert provider_id == f"{msg.channel}/{msg.ts}" and msg.channel.startswith("D")


async def test_dm_by_email_looks_the_user_up_once(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    s = sender(fake_slack, tmp_path)
    alice = person(default_policy, "alice")
    await s.send(note_for(alice, step="a"), "email:alice@madplan.example")
    await s.send(note_for(alice, step="b"), "email:alice@madplan.example")
    assert len(fake_slack.calls_to("users.lookupByEmail")) == 1
    assert len(fake_slack.messages("U0ALICE")) == 2
    with pytest.raises(PermanentDeliveryError, match="users_not_found"):
        await s.send(note_for(alice, step="c"), "email:nobody@madplan.example")


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "account_inactive", "user_not_found"]
)
async def test_permanent_slack_errors(
    error: str, fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    fake_slack.error("chat.postMessage", error)
    with pytest.raises(PermanentDeliveryError, match=error):
        await sender(fake_slack, tmp_path).send(note_for(person(default_policy, "bob")), "U0BOB")


async def test_unknown_channel_and_bad_token_are_permanent(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    note = note_for(None, kind="initial_alert", channel_role="incidents")
    with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
        await sender(fake_slack, tmp_path).send(note, "#no-such-channel")
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        await sender(fake_slack, tmp_path, slack_bot_token="xoxb-wrong").send(note, "#incidents")
    assert fake_slack.posts() == []


async def test_ratelimit_is_transient_with_retry_after(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    fake_slack.ratelimit("chat.postMessage", retry_after=7)
    with pytest.raises(TransientDeliveryError) as caught:
        await sender(fake_slack, tmp_path).send(note_for(person(default_policy, "bob")), "U0BOB")
    assert caught.value.retry_after == 7 and not caught.value.maybe_sent
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.status == 429


async def test_server_error_is_transient_and_maybe_sent(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    fake_slack.server_error("chat.postMessage", after_effect=True)
    bob = person(default_policy, "bob")
    s = sender(fake_slack, tmp_path)
    note = note_for(bob).model_copy(update={"idempotency_key": "k:5xx:bob:slack"})
    started = datetime.now(UTC)
    with pytest.raises(TransientDeliveryError) as caught:
        await s.send(note, "U0BOB")
    assert caught.value.maybe_sent
    # Slack did post it: the next attempt finds it by its key instead of posting again.
    found = await s.find(note, "U0BOB", started)
    [msg] = fake_slack.messages("U0BOB")
    assert found == f"{msg.channel}/{msg.ts}"
    assert (
        await s.find(note.model_copy(update={"idempotency_key": "other"}), "U0BOB", started) is None
    )
    assert fake_slack.calls_to("conversations.open") and fake_slack.calls_to(
        "conversations.history"
    )


async def test_unreachable_slack_is_transient(tmp_path: Path, default_policy: Policy) -> None:
    from tests.channels.fake_http import free_port

    settings = channel_settings(
        slack_bot_token="xoxb-x", slack_base_url=f"http://127.0.0.1:{free_port()}/api/"
    )
    s = SlackSender(settings, Ledger(tmp_path / "fw.db"))
    with pytest.raises(TransientDeliveryError):
        await s.send(note_for(person(default_policy, "bob")), "U0BOB")


async def test_incidents_channel_notes_thread_under_the_incident_message(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    s = sender(fake_slack, tmp_path)
    initial = note_for(None, kind="initial_alert", step="initial", channel_role="incidents")
    await s.send(initial, "#incidents")
    ack = note_for(None, kind="acknowledged", step="ack", channel_role="incidents")
    await s.send(ack, "#incidents")
    resolved = note_for(None, kind="resolution", step="resolved", channel_role="incidents")
    await s.send(resolved, "#incidents")
    parent, reply, final = fake_slack.messages("#incidents")
    assert parent.thread_ts is None
    assert reply.thread_ts == parent.ts and not reply.reply_broadcast
    assert final.thread_ts == parent.ts and final.reply_broadcast  # the resolution shows in-channel
    # Finding a thread reply again reads the thread (conversations.replies).
    found = await s.find(ack, "#incidents", datetime.now(UTC) - timedelta(minutes=1))
    assert found == f"{reply.channel}/{reply.ts}"
    assert fake_slack.calls_to("conversations.replies")


async def test_calls_share_one_http_session_per_loop_until_shutdown(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    """Slack calls reuse one connection pool; shutdown closes it (no aiohttp warnings)."""
    alice = person(default_policy, "alice")
    settings = channel_settings(slack=fake_slack)
    for n in (1, 2):
        note = note_for(alice).model_copy(update={"idempotency_key": f"INC-1:page-{n}:a:slack"})
        await sender(fake_slack, tmp_path).send(note, "U0ALICE")
    [session] = slack._SESSIONS[asyncio.get_running_loop()].values()
    assert slack.slack_client(settings).session is session and not session.closed
    await slack.close_shared_sessions()
    assert session.closed and asyncio.get_running_loop() not in slack._SESSIONS
    fresh = slack.slack_client(settings).session  # a later call opens a new one
    assert fresh is not None and fresh is not session and not fresh.closed
    await slack.close_shared_sessions()
