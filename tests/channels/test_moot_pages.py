"""A page that is still retrying when the incident is acknowledged never reaches anyone.

Dev server, real worker in process, local Twilio / Slack / SMTP peers, a P1 on one-second
minutes. Twilio answers 500 to every SMS for the secondary, so that page keeps retrying;
the primary acknowledges; Twilio recovers. The retry is withdrawn (and the timeline says
so) instead of paging the secondary for an incident someone already owns.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client

from domain.incident import AcknowledgeRequest, IncidentState
from domain.policy import Policy, Role
from starter.incidents import open_or_join
from tests.channels.conftest import Mailbox, channel_settings
from tests.channels.fake_slack import FakeSlack
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.stack import firewatch_stack
from tests.channels.test_full_ladder import who
from tests.dev.support import wait_for
from tests.policies import scaled_policy
from tests.workflows.helpers import make_alert, state_of
from workflows.incident import IncidentWorkflow


async def test_a_page_retrying_when_the_incident_is_acknowledged_is_withdrawn(
    namespace_client: Client,
    default_policy: Policy,
    fake_slack: FakeSlack,
    fake_twilio: FakeTwilio,
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    slack, twilio = fake_slack, fake_twilio
    policy = scaled_policy(default_policy, unit=timedelta(seconds=1))  # secondary at +15 s
    primary, _, primary_phone, _ = who(policy, Role.PRIMARY)
    secondary, secondary_label, secondary_phone, secondary_slack = who(policy, Role.SECONDARY)
    down = twilio.server_error(times=10_000, match=lambda r: r.params.get("To") == secondary_phone)
    settings = channel_settings(slack=slack, twilio=twilio, smtp_port=mailbox[1])

    async with firewatch_stack(namespace_client, policy, tmp_path, settings, executor) as stack:
        handle = await open_or_join(stack.client, make_alert("P1"), task_queue=stack.queue)
        opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)

        async def secondary_tried() -> bool:
            return any(
                c.request.params.get("To") == secondary_phone
                for c in twilio.calls_to("POST Messages")
            )

        await wait_for(secondary_tried, timeout=40, what="the secondary's page to be tried")
        acked = await handle.execute_update(
            IncidentWorkflow.acknowledge, AcknowledgeRequest(by=primary)
        )
        # The reply shows the incident after the ack: no more pages are planned.
        assert acked.next_step_label == "update reminder"
        down.times = 0  # Twilio recovers: a late retry would now get through

        async def withdrawn() -> str | None:
            st = await state_of(handle)
            return next(
                (
                    e.text
                    for e in st.timeline
                    if e.kind == "delivery_dropped" and secondary_label in e.text
                ),
                None,
            )

        text = await wait_for(withdrawn, timeout=30, what="the secondary's page to be withdrawn")
        assert text == (
            f"Withdrew page to {secondary_label}, no longer needed: acknowledged by {primary}"
        )
        # Withdrawn means no attempt is left: the secondary got nothing, on any channel.
        assert twilio.sms_to(secondary_phone) == []
        assert slack.messages(secondary_slack) == []
        assert mailbox[0].messages == []
        # The primary's page went out at once, by SMS.
        [primary_sms] = twilio.sms_to(primary_phone)
        assert primary_sms["body"].startswith(f"[P1] {opened.incident_id} api")
        st = await state_of(handle)
        assert [p.person for p in st.pages] == [primary, secondary]
        assert st.acknowledged_at is not None
        assert st.acknowledged_at - opened.opened_at < timedelta(seconds=30)
        assert datetime.now(UTC) - opened.opened_at < timedelta(seconds=60)
        await handle.terminate("test over")
