"""TwilioSender (SMS and voice) against the local Twilio API: shapes, errors, throttle, lookup."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest

from activities.channels.base import PermanentDeliveryError, TransientDeliveryError, ref_marker
from activities.channels.twilio_sms import TwilioSender
from domain.policy import Policy
from tests.channels.conftest import channel_settings, note_for, person
from tests.channels.fake_twilio import ACCOUNT_SID, FROM_NUMBER, FakeTwilio

ALICE = "+15550100001"


def sms(fake: FakeTwilio, **extra: object) -> TwilioSender:
    return TwilioSender(channel_settings(twilio=fake, **extra), "sms")


async def test_sms_posts_the_form_with_short_code_and_ref(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    note = note_for(person(default_policy, "alice")).model_copy(
        update={"idempotency_key": "INC:page:alice:sms"}
    )
    sid = await sms(fake_twilio).send(note, ALICE)

    [call] = fake_twilio.calls_to("POST Messages")
    assert call.request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert "x-www-form-urlencoded" in (call.request.header("Content-Type") or "")
    assert (call.request.header("Authorization") or "").startswith("Basic ")
    assert call.status == 201
    [message] = fake_twilio.sms_to(ALICE)
    assert message["sid"] == sid and message["from"] == FROM_NUMBER
    body = message["body"]
    assert body.startswith("[P1] INC-2026-11-26-001 Page - api: API p99 > 5s")
    assert "Reply ACK 1126001 to acknowledge, RESOLVE 1126001 to resolve." in body
    assert body.endswith(f"({ref_marker('INC:page:alice:sms')})")
    assert "**" not in body


@pytest.mark.parametrize("code", [21211, 21614, 21610])
async def test_bad_numbers_are_permanent(
    code: int, fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    fake_twilio.bad_numbers[ALICE] = code
    with pytest.raises(PermanentDeliveryError, match=str(code)):
        await sms(fake_twilio).send(note_for(person(default_policy, "alice")), ALICE)
    assert fake_twilio.messages == []


async def test_malformed_number_and_bad_credentials_are_permanent(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    alice = person(default_policy, "alice")
    with pytest.raises(PermanentDeliveryError, match="21211"):
        await sms(fake_twilio).send(note_for(alice), "555-0100")
    with pytest.raises(PermanentDeliveryError, match="authentication"):
        await sms(fake_twilio, twilio_auth_token="wrong").send(note_for(alice), ALICE)


async def test_throttled_is_transient_with_retry_after(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    fake_twilio.throttle(retry_after=3)
    with pytest.raises(TransientDeliveryError) as caught:
        await sms(fake_twilio).send(note_for(person(default_policy, "alice")), ALICE)
    assert caught.value.retry_after == 3 and not caught.value.maybe_sent


async def test_server_error_is_transient_and_lookup_finds_what_went_out(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    fake_twilio.server_error(after_effect=True)
    sender = sms(fake_twilio)
    note = note_for(person(default_policy, "alice")).model_copy(update={"idempotency_key": "k:sms"})
    started = datetime.now(UTC)
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(note, ALICE)
    assert caught.value.maybe_sent
    [message] = fake_twilio.sms_to(ALICE)
    assert await sender.find(note, ALICE, started) == message["sid"]
    assert (
        await sender.find(note.model_copy(update={"idempotency_key": "other"}), ALICE, started)
        is None
    )
    [listing] = fake_twilio.calls_to("GET Messages")[:1]
    assert listing.request.params["To"] == ALICE


async def test_voice_call_reads_the_summary(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    sender = TwilioSender(channel_settings(twilio=fake_twilio), "voice")
    note = note_for(person(default_policy, "alice"))
    started = datetime.now(UTC)
    sid = await sender.send(note, ALICE)
    [call] = fake_twilio.calls_made
    assert call["sid"] == sid and call["to"] == ALICE
    assert (
        "<Say>Firewatch. P1 INC-2026-11-26-001 Page - api: API p99 &gt; 5s.</Say>" in call["twiml"]
    )
    assert "A C K 1 1 2 6 0 0 1" in call["twiml"]
    assert await sender.find(note, ALICE, started) == sid


async def test_sends_from_one_number_are_spaced(
    fake_twilio: FakeTwilio, default_policy: Policy
) -> None:
    sender = sms(fake_twilio, twilio_mps=4.0, twilio_from="+15005550099")
    alice = person(default_policy, "alice")
    for i in range(5):
        await sender.send(note_for(alice, step=f"s{i}"), ALICE)
    times = [c.request.at for c in fake_twilio.calls_to("POST Messages")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 4 per second: sends start 0.25 s apart, so five span 1 s. Arrivals at the fake jitter
    # (scheduling on this busy 2-core machine, a thread's first call opening its connection),
    # so the rate is checked over the span, with a margin; unthrottled, five take ~50 ms.
    assert times[-1] - times[0] >= 0.8, gaps
    assert time.time() - times[0] < 6
