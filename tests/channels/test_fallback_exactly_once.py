"""deliver_notification with real channels: contact-method fallback and exactly-once per channel.

Driven through Temporal's ActivityEnvironment against the local Slack and Twilio
servers and aiosmtpd; every delivery is counted at the peer.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels.ledger import Ledger
from activities.models import DeliveryResult, Notification
from activities.notify import NotifyActivities, channel_key
from activities.store import Store
from domain.policy import Person, Policy
from tests.channels.conftest import Mailbox, channel_settings, note_for, person
from tests.channels.fake_slack import FakeSlack
from tests.channels.fake_twilio import FakeTwilio

ALICE_PHONE = "+15550100001"


async def run(
    acts: NotifyActivities,
    note: Notification,
    attempt: int = 1,
    first_scheduled_ago: timedelta = timedelta(0),
) -> DeliveryResult:
    env = ActivityEnvironment()
    first = datetime.now(UTC) - first_scheduled_ago
    env.info = dataclasses.replace(env.info, attempt=attempt, scheduled_time=first)
    result: DeliveryResult = await env.run(acts.deliver_notification, note)
    return result


def statuses(result: DeliveryResult) -> list[tuple[str, str]]:
    return [(a.channel, a.status) for a in result.attempts]


@pytest.fixture
def alice(default_policy: Policy) -> Person:
    return person(default_policy, "alice")


@pytest.fixture
def everything(
    fake_slack: FakeSlack, fake_twilio: FakeTwilio, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> NotifyActivities:
    _, port = mailbox
    settings = channel_settings(slack=fake_slack, twilio=fake_twilio, smtp_port=port)
    return NotifyActivities(Store(tmp_path), settings)


async def test_nothing_configured_is_the_outbox_as_before(tmp_path: Path, alice: Person) -> None:
    acts = NotifyActivities(Store(tmp_path), channel_settings())
    result = await run(acts, note_for(alice))
    assert result.channel == "outbox" and result.delivered and result.attempts == []
    again = await run(acts, note_for(alice))
    assert not again.delivered
    [row] = Store(tmp_path).notifications()
    assert (row.channel, row.status, row.idempotency_key) == (
        "outbox",
        "sent",
        note_for(alice).idempotency_key,
    )


async def test_sms_first_when_it_works(
    everything: NotifyActivities,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    alice: Person,
    tmp_path: Path,
) -> None:
    result = await run(everything, note_for(alice))
    assert result.channel == "sms" and result.delivered
    assert statuses(result) == [("sms", "sent")]
    assert len(fake_twilio.sms_to(ALICE_PHONE)) == 1 and fake_slack.posts() == []
    [row] = Store(tmp_path).notifications()
    assert (row.channel, row.status) == ("sms", "sent")
    assert row.idempotency_key == "INC-2026-11-26-001:page:e0:l0:0:alice:sms"


async def test_bad_number_falls_back_to_slack_dm_once(
    everything: NotifyActivities,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    mailbox: tuple[Mailbox, int],
    alice: Person,
    tmp_path: Path,
) -> None:
    fake_twilio.bad_numbers[ALICE_PHONE] = 21211
    note = note_for(alice)
    result = await run(everything, note)
    assert result.channel == "slack" and result.delivered
    assert statuses(result) == [("sms", "failed"), ("slack", "sent")]
    assert "21211" in result.attempts[0].detail
    rows = Store(tmp_path).notifications()
    assert [(r.channel, r.status) for r in rows] == [("sms", "failed"), ("slack", "sent")]

    # The same step again (a re-run activity, a replayed workflow): nothing new goes out.
    again = await run(everything, note, attempt=2)
    assert not again.delivered
    assert statuses(again) == [("sms", "failed"), ("slack", "duplicate")]
    assert len(fake_twilio.calls_to("POST Messages")) == 1
    assert len(fake_slack.posts_with_key(channel_key(note.idempotency_key, "slack"))) == 1
    assert len(fake_slack.posts()) == 1 and mailbox[0].messages == []
    assert len(Store(tmp_path).notifications()) == 2


async def test_every_method_failing_permanently_ends_in_email_then_nothing(
    everything: NotifyActivities,
    fake_twilio: FakeTwilio,
    fake_slack: FakeSlack,
    mailbox: tuple[Mailbox, int],
    default_policy: Policy,
) -> None:
    alice, bob = person(default_policy, "alice"), person(default_policy, "bob")
    fake_twilio.bad_numbers[ALICE_PHONE] = 21614
    fake_slack.error("chat.postMessage", "account_inactive")
    result = await run(everything, note_for(alice))
    assert statuses(result) == [("sms", "failed"), ("slack", "failed"), ("email", "sent")]
    assert len(mailbox[0].messages) == 1

    mailbox[0].refuse.add("bob@madplan.example")
    fake_twilio.bad_numbers["+15550100002"] = 21211
    fake_slack.error("chat.postMessage", "user_not_found")
    result = await run(everything, note_for(bob))
    assert not result.delivered
    assert statuses(result) == [("sms", "failed"), ("slack", "failed"), ("email", "failed")]
    assert len(mailbox[0].messages) == 1


async def test_ratelimit_retries_with_retry_after_then_sends_once(
    everything: NotifyActivities, fake_twilio: FakeTwilio, alice: Person
) -> None:
    fake_twilio.throttle(retry_after=7)
    note = note_for(alice)
    with pytest.raises(ApplicationError) as caught:
        await run(everything, note)
    assert not caught.value.non_retryable
    assert caught.value.next_retry_delay == timedelta(seconds=7)
    assert caught.value.type == "TransientDeliveryError"
    result = await run(everything, note, attempt=2)
    assert statuses(result) == [("sms", "sent")]
    assert len(fake_twilio.sms_to(ALICE_PHONE)) == 1


async def test_a_provider_failing_for_30s_falls_back_whatever_the_attempt(
    everything: NotifyActivities, fake_twilio: FakeTwilio, fake_slack: FakeSlack, alice: Person
) -> None:
    """A hanging provider uses few attempts (each waits out the HTTP timeout): the walk moves
    on by time too, so a page reaches a working channel within about a minute."""
    fake_twilio.server_error(times=2)
    note = note_for(alice)
    with pytest.raises(ApplicationError):
        await run(everything, note, attempt=2, first_scheduled_ago=timedelta(seconds=29))
    result = await run(everything, note, attempt=2, first_scheduled_ago=timedelta(seconds=31))
    assert statuses(result) == [("sms", "failed"), ("slack", "sent")]
    assert "still failing after 2 tries" in result.attempts[0].detail
    assert fake_twilio.sms_to(ALICE_PHONE) == [] and len(fake_slack.posts()) == 1


async def test_5xx_after_sending_is_not_sent_twice(
    everything: NotifyActivities, fake_twilio: FakeTwilio, fake_slack: FakeSlack, alice: Person
) -> None:
    """Twilio took the message but answered 500: the retry finds it by its ref marker."""
    fake_twilio.server_error(after_effect=True)
    note = note_for(alice)
    with pytest.raises(ApplicationError):
        await run(everything, note)
    result = await run(everything, note, attempt=2)
    assert statuses(result) == [("sms", "sent")]
    assert "found at the provider" in result.attempts[0].detail
    assert len(fake_twilio.sms_to(ALICE_PHONE)) == 1
    assert fake_twilio.calls_to("GET Messages")
    assert fake_slack.posts() == []


async def die_mid_call(acts: NotifyActivities, fake_slack: FakeSlack, note: Notification) -> str:
    """Attempt 1 posts the DM and dies before it can record that; the ledger says pending."""
    key = channel_key(note.idempotency_key, "slack")
    hold = fake_slack.hold("chat.postMessage")
    attempt = asyncio.create_task(run(acts, note))
    assert await asyncio.to_thread(hold.wait_reached, 10)
    attempt.cancel()  # the worker is gone: nothing after the HTTP call runs
    with pytest.raises(asyncio.CancelledError):
        await attempt
    hold.release()
    row = Ledger(acts._store.database).get(key)
    assert row is not None and row.status == "pending"
    return key


async def test_worker_dying_mid_call_is_retried_at_once_and_not_sent_twice(
    fake_slack: FakeSlack, tmp_path: Path, alice: Person
) -> None:
    """The retry of the same activity (Temporal gave attempt 1 up: its worker stopped
    heartbeating) does not wait out the lease: once the claim is a heartbeat timeout old it
    asks Slack, and finds the DM by its metadata key."""
    acts = NotifyActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    assert acts._lease_s > 10  # a lease this long would make the page that late
    note = note_for(alice)
    key = await die_mid_call(acts, fake_slack, note)

    # Straight after the claim, attempt 1 might still be calling (a worker too busy to
    # heartbeat): wait out the heartbeat timeout, not the lease.
    with pytest.raises(ApplicationError, match="in flight") as caught:
        await run(acts, note, attempt=2)
    delay = caught.value.next_retry_delay
    assert delay is not None and delay <= timedelta(seconds=acts._handover_s + 0.5)
    assert fake_slack.calls_to("conversations.history") == []

    acts._handover_s = 0  # the claim is a heartbeat timeout old
    result = await run(acts, note, attempt=3)
    assert result.delivered and statuses(result) == [("slack", "sent")]
    assert "found at the provider" in result.attempts[0].detail
    assert len(fake_slack.posts_with_key(key)) == 1
    assert fake_slack.calls_to("conversations.history")
    row = Ledger(Store(tmp_path).database).get(key)
    assert row is not None and row.status == "sent" and row.provider_id


async def test_a_pending_claim_of_another_activity_waits_out_its_lease(
    fake_slack: FakeSlack, tmp_path: Path, alice: Person
) -> None:
    """Another activity with the same key (not a retry of the one that claimed it) cannot
    know whether that one is still talking to Slack: it waits out the lease, then asks."""
    acts = NotifyActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    note = note_for(alice)
    key = await die_mid_call(acts, fake_slack, note)

    other = ActivityEnvironment()
    other.info = dataclasses.replace(other.info, activity_id="another", attempt=2)
    with pytest.raises(ApplicationError, match="in flight") as caught:
        await other.run(acts.deliver_notification, note)
    assert caught.value.next_retry_delay is not None
    assert fake_slack.calls_to("conversations.history") == []

    acts._lease_s = 0  # the lease has run out
    result = await other.run(acts.deliver_notification, note)
    assert result.delivered and statuses(result) == [("slack", "sent")]
    assert len(fake_slack.posts_with_key(key)) == 1
    assert fake_slack.calls_to("conversations.history")


async def test_persistent_transient_failure_moves_on_after_a_few_tries(
    everything: NotifyActivities, fake_twilio: FakeTwilio, fake_slack: FakeSlack, alice: Person
) -> None:
    fake_twilio.throttle(retry_after=1, times=10)
    note = note_for(alice)
    for attempt in (1, 2, 3):
        with pytest.raises(ApplicationError):
            await run(everything, note, attempt=attempt)
    result = await run(everything, note, attempt=4)
    assert statuses(result) == [("sms", "failed"), ("slack", "sent")]
    assert "still failing after 4 tries" in result.attempts[0].detail
    assert fake_twilio.messages == [] and len(fake_slack.posts()) == 1


async def test_methods_without_address_or_config_are_skipped(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    acts = NotifyActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    nobody = Person(name="zed", phone="+15550109999")  # no Slack id, no email
    result = await run(acts, note_for(nobody))
    assert result.channel == "outbox" and result.delivered  # nothing real can reach zed
    by_email = Person(
        name="yan", email="mallory@elsewhere.example", contact_order=("email", "slack")
    )
    result = await run(acts, note_for(by_email))
    assert statuses(result) == [("slack", "sent")]
    assert fake_slack.messages("U0OUTSIDER")


async def test_channel_notes_go_to_slack_channels(fake_slack: FakeSlack, tmp_path: Path) -> None:
    settings = channel_settings(slack=fake_slack, slack_channel="ops-incidents")
    ops = fake_slack.add_channel("ops-incidents")
    acts = NotifyActivities(Store(tmp_path), settings)
    initial = note_for(None, kind="initial_alert", step="initial", channel_role="incidents")
    await run(acts, initial)
    notice = note_for(
        None,
        kind="stakeholder_notice",
        step="stakeholders",
        recipient="#stakeholders",
        channel_role="stakeholders",
    )
    await run(acts, notice)
    assert len(fake_slack.messages(ops.id)) == 1
    assert len(fake_slack.messages("stakeholders")) == 1
    assert fake_slack.messages("incidents") == []
    rows = Store(tmp_path).notifications()
    assert [(r.recipient, r.channel) for r in rows] == [
        ("#incidents", "slack"),
        ("#stakeholders", "slack"),
    ]


async def test_slack_ratelimit_sets_next_retry_delay(
    fake_slack: FakeSlack, tmp_path: Path, alice: Person
) -> None:
    acts = NotifyActivities(Store(tmp_path), channel_settings(slack=fake_slack))
    fake_slack.ratelimit("chat.postMessage", retry_after=12)
    with pytest.raises(ApplicationError) as caught:
        await run(acts, note_for(alice))
    assert caught.value.next_retry_delay == timedelta(seconds=12) and not caught.value.non_retryable
    result = await run(acts, note_for(alice), attempt=2)
    assert statuses(result) == [("slack", "sent")] and len(fake_slack.posts()) == 1
