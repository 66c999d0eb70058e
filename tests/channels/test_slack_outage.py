"""Issue 9, "A Slack outage stops paging": with Slack down, every page still goes out on time.

Dev server, real worker in process (``tests.channels.stack``), the local Twilio healthy
throughout. Slack is down from before the incident opens until after it is acknowledged:

* ``unreachable``: nothing listens on the Slack base URL's port (connection refused);
* ``hanging``: a :class:`BlackHole` on that port accepts connections and never answers
  (each call ends at the client's own timeout), for longer than the whole ladder.

A P1 on 5-second windows (``outage_policy``) pages primary, secondary, team lead and EM at
+0, +5, +10, +15 s and, nobody having acknowledged, tells #incidents the ladder starts
again and pages the primary once more at +20 s. Everyone has a phone and SMS comes first
in their contact order, so every page must reach Twilio within ``ON_TIME`` of its due
instant (``opened_at`` + the windows before it), whatever Slack does. Both instants are
wall clock on this machine: the workflow's ``opened_at`` is the dev server's clock, the
arrival is ``time.time()`` in the fake Twilio.

The primary then acknowledges (the workflow update the API and Slack buttons use); the
``IncidentStatus`` search attribute must say so within ``ON_TIME``. Then Slack comes back
on the same port: the #incidents message must catch up with the acknowledged state within
``CATCH_UP``, and nothing that became moot may be sent: no page or DM to anyone after the
ack, and the "ladder starts again" notice that was stuck in the outage is withdrawn (on the
timeline) instead of posted.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from temporalio.client import Client, WorkflowHandle

from domain import rotation
from domain.incident import AcknowledgeRequest, IncidentState, Status
from domain.policy import Person, Policy, Severity, SeverityPolicy
from starter.incidents import open_or_join
from tests.channels.conftest import channel_settings
from tests.channels.fake_http import BlackHole, Call
from tests.channels.fake_slack import FakeSlack, Message
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.stack import firewatch_stack
from tests.channels.test_full_ladder import incident_message, key_parts, posts_by_key
from tests.dev.support import wait_for
from tests.policies import scaled_policy
from tests.workflows.helpers import make_alert, state_of
from workflows import search_attributes as sa
from workflows.incident import IncidentWorkflow

WINDOW = timedelta(seconds=5)  # each ladder level's window to acknowledge
# Every other P1 timing on a clock where one policy minute lasts 10 s: the first update
# reminder comes 150 s after the ack and the stakeholder notice 600 s after opening, both
# after the test, so any page or DM after the ack is one that became moot.
UNIT = timedelta(seconds=10)
ON_TIME = timedelta(seconds=1)  # a page's lateness at Twilio; the ack's at visibility
CATCH_UP = 60.0  # seconds for the #incidents message to show the ack once Slack is back
HTTP_TIMEOUT = 5.0  # the worker's Slack/Twilio client timeout: a hanging call ends there

Outage = Literal["unreachable", "hanging"]


def outage_policy(base: Policy) -> Policy:
    """The shipped policy with the P1 ladder on ``WINDOW``-long levels (two passes)."""
    policy = scaled_policy(base, unit=UNIT)
    p1 = policy.for_severity(Severity.P1)
    ladder = tuple(level.model_copy(update={"window": WINDOW}) for level in p1.ladder)
    fast = SeverityPolicy.model_validate({**p1.model_dump(), "ladder": ladder})
    assert fast.loops >= 2, "the test needs the 'ladder starts again' notice"
    return policy.model_validate(
        {**policy.model_dump(), "severities": {**policy.severities, Severity.P1: fast}}
    )


def expected_pages(policy: Policy, opened_at: datetime) -> list[tuple[Person, datetime]]:
    """(person, due) of every page until the second pass's first level, in order."""
    p1 = policy.for_severity(Severity.P1)
    holders = rotation.on_call(policy.roster, opened_at)
    out: list[tuple[Person, datetime]] = []
    due = opened_at
    for level in p1.ladder:
        out.append((holders[level.target], due))
        due += level.window
    out.append((holders[p1.ladder[0].target], due))  # the second pass starts
    return out


def incident_sms(twilio: FakeTwilio, incident_id: str) -> list[Call]:
    """Twilio's accepted SMS about the incident, in arrival order."""
    return [
        c
        for c in twilio.calls_to("POST Messages", ok_only=True)
        if incident_id in str(c.request.params.get("Body", ""))
    ]


async def status_in_visibility(client: Client, incident_id: str) -> str | None:
    async for wf in client.list_workflows(f'IncidentId = "{incident_id}"'):
        return wf.typed_search_attributes.get(sa.INCIDENT_STATUS)
    return None


def dms(slack: FakeSlack) -> list[Message]:
    with slack.lock:
        return [m for ch in slack.channels.values() if ch.is_im for m in ch.messages]


@pytest.mark.parametrize("outage", ["unreachable", "hanging"])
async def test_a_slack_outage_never_holds_a_page_back(
    outage: Outage,
    namespace_client: Client,
    default_policy: Policy,
    fake_slack: FakeSlack,
    fake_twilio: FakeTwilio,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    slack, twilio = fake_slack, fake_twilio
    policy = outage_policy(default_policy)
    for person in policy.roster.people:
        assert person.phone and person.contact_order[0] == "sms", person
    # Slack goes down before anything talks to it; the worker keeps its base URL.
    slack.stop()
    hole = BlackHole(slack.port).start() if outage == "hanging" else None
    settings = channel_settings(slack=slack, twilio=twilio, http_timeout=HTTP_TIMEOUT)
    handle: WorkflowHandle[Any, Any] | None = None
    try:
        async with firewatch_stack(namespace_client, policy, tmp_path, settings, executor) as stack:
            handle = await open_or_join(stack.client, make_alert("P1"), task_queue=stack.queue)
            opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
            incident_id = opened.incident_id or ""
            pages = expected_pages(policy, opened.opened_at)
            last_due = pages[-1][1]

            # ---- every level paged by SMS on time, Slack down all along ----------------
            async def all_paged() -> list[Call] | None:
                sms = incident_sms(twilio, incident_id)
                return sms if len(sms) >= len(pages) else None

            wait = (last_due - datetime.now(UTC)).total_seconds() + 10
            try:
                sms = await wait_for(all_paged, timeout=wait, what="every level's SMS page")
            except AssertionError as err:
                got = len(incident_sms(twilio, incident_id))
                raise AssertionError(
                    f"{err}: {got} of {len(pages)} pages reached Twilio while Slack was {outage}"
                ) from None
            # Acknowledge at once: the second pass's secondary is due only one window later.
            primary = pages[0][0]
            ack_sent = time.time()
            acked = await handle.execute_update(
                IncidentWorkflow.acknowledge, AcknowledgeRequest(by=primary.name)
            )
            assert acked.status == Status.INVESTIGATING

            # ---- the ack is in visibility within a second ------------------------------
            async def investigating() -> float | None:
                status = await status_in_visibility(stack.client, incident_id)
                return time.time() if status == Status.INVESTIGATING.value else None

            seen = await wait_for(
                investigating, timeout=30, interval=0.05, what="IncidentStatus = Investigating"
            )
            ack_visible_after = seen - ack_sent

            lateness = [
                (person.name, sms_to.request.params.get("To"), sms_to.request.at - due.timestamp())
                for (person, due), sms_to in zip(pages, sms, strict=False)
            ]
            report = ", ".join(f"{name} {late:+.2f}s" for name, _, late in lateness)
            assert [to for _, to, _ in lateness] == [p.phone for p, _ in pages], (
                f"pages went to the wrong people, or in the wrong order: {report}"
            )
            assert all(0 <= late <= ON_TIME.total_seconds() for _, _, late in lateness), (
                f"with Slack {outage}, pages must reach Twilio within {ON_TIME.total_seconds()}s"
                f" of their due time; lateness: {report}"
            )
            assert ack_visible_after <= ON_TIME.total_seconds(), (
                f"IncidentStatus showed the ack {ack_visible_after:.2f}s after it was sent"
            )
            # The outage was real: nothing reached Slack, which swallowed what it got.
            assert slack.calls == []
            assert hole is None or hole.connections > 0, "the worker never tried Slack"

            # ---- Slack comes back on the same port -------------------------------------
            if hole is not None:
                hole.stop()
            slack.start()
            label = primary.label

            async def caught_up() -> Message | None:
                message = incident_message(slack, incident_id)
                if message is None or f"Acknowledged by {label}" not in message.text:
                    return None
                if "Investigating" not in message.text:
                    return None
                kinds = {key_parts(k)[0] for k in posts_by_key(slack) if incident_id in k}
                return message if "ack" in kinds else None  # the ack's thread reply

            back = time.time()
            await wait_for(
                caught_up,
                timeout=CATCH_UP,
                what="the #incidents message to show the ack and its thread reply",
            )
            # Shown with -s: the margins, for whoever tunes the windows or the retry pace.
            print(
                f"\nSlack {outage}: page lateness {report}; ack visible after"
                f" {ack_visible_after:.2f}s; #incidents caught up {time.time() - back:.1f}s"
                " after Slack came back"
            )

            # The notice that the ladder starts again was stuck in the outage and is moot now:
            # wait until it is either withdrawn or (wrongly) posted, then look at everything.
            async def repeat_settled() -> bool:
                st = await state_of(handle)
                withdrawn = any(
                    e.kind == "delivery_dropped" and "ladder repeat" in e.text for e in st.timeline
                )
                posted = any(key_parts(k)[0] == "repeat" for k in posts_by_key(slack))
                return withdrawn or posted

            await wait_for(repeat_settled, timeout=30, what="the moot repeat notice to settle")
            st = await state_of(handle)

        # ---- nothing moot was sent --------------------------------------------------------
        slack_posts = Counter(
            key_parts(k) for k, n in posts_by_key(slack).items() for _ in range(n)
        )
        moot = [k for k in slack_posts if k[0] not in ("initial", "ack")]
        assert moot == [], f"sent to Slack after the ack though no longer needed: {moot}"
        assert slack_posts == Counter(
            {("initial", "#incidents", "slack"): 1, ("ack", "#incidents", "slack"): 1}
        )
        assert dms(slack) == [], "a page or reminder went to someone's Slack DMs"
        late_sms = [
            (c.request.params.get("To"), c.request.at - ack_sent)
            for c in incident_sms(twilio, incident_id)
            if c.request.at >= ack_sent
        ]
        assert late_sms == [], f"SMS after the ack: {late_sms}"
        assert twilio.calls_to("POST Calls") == []
        assert [p.person for p in st.pages] == [p.name for p, _ in pages]
        dropped = [e.text for e in st.timeline if e.kind == "delivery_dropped"]
        assert any(
            t.startswith("Withdrew ladder repeat to #incidents, no longer needed: acknowledged")
            for t in dropped
        ), dropped
        assert st.status == Status.INVESTIGATING and st.acknowledged_by == primary.name
    finally:
        if hole is not None:
            hole.stop()
        if handle is not None:
            with contextlib.suppress(Exception):  # already closed
                await handle.terminate("test over")
