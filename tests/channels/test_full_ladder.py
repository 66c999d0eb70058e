"""The whole ladder through real protocol peers, every delivery counted at the peer.

P1 opens; the SMS to the primary fails permanently (invalid number), so the page falls
back to a Slack DM; nobody acknowledges, so the secondary is paged by SMS at +15; the
secondary clicks Acknowledge on the #incidents message; no further page goes out and
the message is edited to "Acknowledged by …".

* ``test_ladder_on_time`` runs it on the time-skipping server (the exact +15).
* ``test_worker_killed_between_the_call_and_completion`` runs it on the dev server with
  the worker as a real process, SIGKILLed while Twilio holds back its answer to the
  secondary's SMS (Twilio has already accepted it). The retried activity must not send
  it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.channels.base import ref_marker
from activities.channels.ledger import Ledger, LedgerRow
from activities.channels.slack import ACTION_ACK, button_value
from activities.store import Store
from domain import rotation
from domain.incident import IncidentState, Status
from domain.policy import Policy, Role
from starter.api.app import create_app
from starter.api.context import ApiSettings
from starter.incidents import INCIDENT_TASK_TIMEOUT, open_or_join
from tests.channels.conftest import Mailbox, channel_settings, fake_channels_env
from tests.channels.fake_slack import FakeSlack
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.stack import PUBLIC_URL, block_action, firewatch_stack, slack_headers
from tests.dev.support import deliveries, wait_for, wait_polling, worker_env, worker_process
from tests.policies import scaled_policy, write_policy
from tests.workflows.helpers import make_alert, state_of
from workflows.incident import IncidentWorkflow


def who(policy: Policy, role: Role) -> tuple[str, str, str, str]:
    """(name, label, phone, slack id) of whoever holds ``role`` now."""
    person = rotation.on_call(policy.roster, datetime.now(UTC))[role]
    assert person.phone and person.slack_user_id
    return person.name, person.label, person.phone, person.slack_user_id


def posts_by_key(slack: FakeSlack) -> Counter[str]:
    out: Counter[str] = Counter()
    for params in slack.posts():
        meta = params.get("metadata") or {}
        out[(meta.get("event_payload") or {}).get("key", "?")] += 1
    return out


def each_delivery_once(
    data: Path, incident_id: str, slack: FakeSlack, twilio: FakeTwilio
) -> list[LedgerRow]:
    """Every ledger 'sent' is exactly one message at its peer; the peers hold nothing else."""
    rows = Ledger(Store(data).database).rows(incident_id)
    assert all(r.status in ("sent", "failed") for r in rows), [
        (r.idempotency_key, r.status) for r in rows
    ]
    sent = [r for r in rows if r.status == "sent"]
    slack_posts = posts_by_key(slack)
    for row in sent:
        if row.channel == "slack":
            assert slack_posts[row.idempotency_key] == 1, row
        elif row.channel == "sms":
            bodies = [m for m in twilio.messages if ref_marker(row.idempotency_key) in m["body"]]
            assert len(bodies) == 1, row
    slack_sent = {r.idempotency_key for r in sent if r.channel == "slack"}
    assert {k for k in slack_posts if k.startswith(incident_id)} == slack_sent
    sms_sent = [r for r in sent if r.channel == "sms"]
    assert len([m for m in twilio.messages if incident_id in m["body"]]) == len(sms_sent)
    return rows


def key_parts(key: str) -> tuple[str, str, str]:
    """INC-2026-11-26-001:page:e0:l0:1:bob:sms → ("page", "bob", "sms")."""
    parts = key.split(":")
    return parts[1], parts[-2], parts[-1]


def incident_message(slack: FakeSlack, incident_id: str) -> Any:
    for msg in slack.messages("incidents"):
        meta = msg.metadata or {}
        if (
            msg.thread_ts is None
            and (meta.get("event_payload") or {}).get("incident_id") == incident_id
        ):
            return msg
    return None


async def click_ack(
    http: httpx.AsyncClient, user: str, st: IncidentState, response_url: str
) -> int:
    body = block_action(
        user, ACTION_ACK, button_value(st.workflow_id, st.incident_id or ""), response_url
    )
    response = await http.post("/slack/interactions", content=body, headers=slack_headers(body))
    return response.status_code


async def test_ladder_on_time(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    fake_slack: FakeSlack,
    fake_twilio: FakeTwilio,
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    slack, twilio = fake_slack, fake_twilio
    primary, primary_label, primary_phone, primary_slack = who(default_policy, Role.PRIMARY)
    secondary, secondary_label, secondary_phone, secondary_slack = who(
        default_policy, Role.SECONDARY
    )
    twilio.bad_numbers[primary_phone] = 21211  # permanently: not a valid number
    settings = channel_settings(slack=slack, twilio=twilio, smtp_port=mailbox[1])
    async with firewatch_stack(
        ts_env.client, default_policy, tmp_path, settings, executor
    ) as stack:
        handle = await open_or_join(ts_env.client, make_alert("P1"), task_queue=stack.queue)
        st: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
        incident_id = st.incident_id or ""
        await ts_env.sleep(timedelta(minutes=1))
        st = await state_of(handle)
        assert [(p.person, p.at - st.opened_at) for p in st.pages] == [(primary, timedelta(0))]
        # SMS refused for good → the page went by Slack DM; both on the timeline.
        [failed] = [e for e in st.timeline if e.kind == "delivery_failed"]
        assert failed.text.startswith(f"SMS to {primary_label} failed: Twilio SMS: 21211")
        assert failed.text.endswith("falling back to slack")
        assert [m.channel for m in slack.messages(primary_slack)]
        assert twilio.sms_to(primary_phone) == [] and len(twilio.calls_to("POST Messages")) == 1
        # ... and in the Temporal UI's current details.
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert f"**Delivery**: SMS to {primary_label} failed" in metadata.current_details

        await ts_env.sleep(timedelta(minutes=15))
        st = await state_of(handle)
        assert [(p.person, p.at - st.opened_at) for p in st.pages] == [
            (primary, timedelta(0)),
            (secondary, timedelta(minutes=15)),
        ]
        [page_sms] = twilio.sms_to(secondary_phone)
        assert page_sms["body"].startswith(f"[P1] {incident_id} api: API p99 > 5s Reply ACK")

        status = await click_ack(stack.http, secondary_slack, st, slack.response_url("ack"))
        assert status == 200
        st = await state_of(handle)
        assert st.status == Status.INVESTIGATING and st.acknowledged_by == secondary
        # Past the team lead's turn (+45): nobody else is paged.
        await ts_env.sleep(timedelta(minutes=35))
        st = await state_of(handle)

        assert [p.person for p in st.pages] == [primary, secondary]
        message = incident_message(slack, incident_id)
        assert message is not None and message.edits >= 2
        assert f"Acknowledged by {secondary_label}" in message.text
        assert f"Acknowledged by {secondary_label}" in json.dumps(message.blocks)
        assert slack.responses[-1]["text"] == f"✅ You acknowledged {incident_id}."

        rows = each_delivery_once(tmp_path, incident_id, slack, twilio)
        team_lead = default_policy.roster.team_lead
        assert Counter(key_parts(r.idempotency_key) for r in rows if r.status == "sent") == Counter(
            {
                ("initial", "#incidents", "slack"): 1,  # the incident message itself
                ("page", primary, "slack"): 1,  # fallback DM
                ("page", secondary, "sms"): 1,
                ("ack", "#incidents", "slack"): 1,  # in the message's thread
                ("remind", secondary, "sms"): 1,  # ack + 15 min, no update yet
                ("overdue", team_lead, "sms"): 1,  # ack + 30 min
            }
        )
        assert [key_parts(r.idempotency_key) for r in rows if r.status == "failed"] == [
            ("page", primary, "sms")
        ]
        assert mailbox[0].messages == []  # email is the last resort; never needed
        room = slack.channel(incident_id.lower())
        assert room is not None and {primary_slack, secondary_slack} <= room.members
        # The outbox lists every delivery, the failure included.
        outbox = [
            (r.kind, r.recipient, r.channel, r.status)
            for r in Store(tmp_path).notifications(incident_id)
        ]
        assert ("page", primary, "sms", "failed") in outbox and (
            "page",
            primary,
            "slack",
            "sent",
        ) in outbox
        await handle.terminate("test over")


async def test_worker_killed_between_the_call_and_completion(
    dev_env: WorkflowEnvironment,
    namespace_client: Client,
    default_policy: Policy,
    fake_slack: FakeSlack,
    fake_twilio: FakeTwilio,
    tmp_path: Path,
) -> None:
    slack, twilio = fake_slack, fake_twilio
    unit = timedelta(seconds=2)  # one policy minute: secondary at 30 s, team lead at 90 s
    policy = scaled_policy(default_policy, unit=unit)
    primary, _, primary_phone, primary_slack = who(policy, Role.PRIMARY)
    secondary, secondary_label, secondary_phone, secondary_slack = who(policy, Role.SECONDARY)
    twilio.bad_numbers[primary_phone] = 21211
    hold = twilio.hold("POST Messages", match=lambda r: r.params.get("To") == secondary_phone)

    client = namespace_client
    queue = f"fw-kill-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    env = worker_env(
        client.service_client.config.target_host,
        data,
        write_policy(policy, tmp_path / "policy.yaml"),
        queue,
        namespace=client.namespace,
    )
    env.update(fake_channels_env(slack, twilio))
    first = worker_process(env, tmp_path / "worker-1.log").start()
    second = worker_process(env, tmp_path / "worker-2.log")
    app = create_app(
        client=client, policy=policy, data=data, settings=ApiSettings(task_queue=queue)
    )
    app.state.channel_settings = channel_settings(slack=slack, twilio=twilio)
    handle: WorkflowHandle[Any, Any] | None = None
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL, timeout=30
        ) as http:
            await wait_polling(client, queue, first)
            handle = await open_or_join(client, make_alert("P1"), task_queue=queue)
            opened: IncidentState = await handle.execute_update(IncidentWorkflow.opened)
            incident_id = opened.incident_id or ""
            # A step in flight on a dead worker is handed on after 2 s, not Temporal's 10 s.
            config = (await handle.describe()).raw_description.execution_config
            assert config.default_workflow_task_timeout.ToTimedelta() == INCIDENT_TASK_TIMEOUT

            # Twilio has the secondary's SMS; its answer is held back; the worker dies.
            assert await asyncio.to_thread(hold.wait_reached, 60), "secondary never paged"
            assert len(twilio.sms_to(secondary_phone)) == 1
            assert first.kill() == -9
            killed = datetime.now(UTC)
            second.start()
            hold.release()
            await wait_polling(client, queue, second)

            # The retried activity asks Twilio before sending again, and finds the SMS.
            async def page_settled() -> bool:
                return any(
                    r is not None and f":{secondary}:" in key for key, r in await deliveries(handle)
                )

            await wait_for(page_settled, timeout=60, what="the retried page to settle")
            # Then the secondary clicks Acknowledge.
            st = await state_of(handle)
            clicked = datetime.now(UTC)
            assert await click_ack(http, secondary_slack, st, slack.response_url("ack")) == 200

            async def settled() -> IncidentState | None:
                st = await state_of(handle)
                message = incident_message(slack, incident_id)
                edited = (
                    message is not None and f"Acknowledged by {secondary_label}" in message.text
                )
                # The workflow has re-planned after the ack: the next step is no page.
                replanned = st.next_step_label == "update reminder"
                # And the ack's own post to #incidents has gone out (it runs beside the edit).
                posted = any(
                    ":ack:" in key and r is not None for key, r in await deliveries(handle)
                )
                ok = st.acknowledged_by == secondary and edited and replanned and posted
                return st if ok else None

            st = await wait_for(settled, timeout=60, what="ack applied, message edited")
            # A message sync in flight on the killed worker is retried after its heartbeat
            # timeout (1.5 s), not its 30 s start-to-close timeout.
            assert datetime.now(UTC) - clicked < timedelta(seconds=10)
            assert opened.opened_at + 15 * unit + 15 * unit > datetime.now(UTC), (
                "too slow: reminders due"
            )

        assert [p.person for p in st.pages] == [primary, secondary]
        # The secondary got exactly one SMS, though the activity that sent it ran again.
        assert len(twilio.sms_to(secondary_phone)) == 1
        assert len(twilio.calls_to("POST Messages")) == 2  # primary (refused) + secondary
        history = await deliveries(handle)
        [(_, page_result)] = [(key, r) for key, r in history if f":{secondary}:" in key]
        assert page_result is not None and page_result.channel == "sms"
        assert "found at the provider" in page_result.attempts[-1].detail
        # Found as soon as the second worker ran the retry (its start-up, then the 2 s
        # heartbeat timeout), not after the pending record's 13 s lease (3 s HTTP timeout,
        # 5 s local throttle, 5 s): the retry knows from Temporal that attempt 1 is over.
        [found] = [
            r
            for r in Ledger(Store(data).database).rows(incident_id)
            if r.provider_id and f":{secondary}:sms" in r.idempotency_key
        ]
        assert found.updated_at - killed < timedelta(seconds=8), found.updated_at - killed
        rows = each_delivery_once(data, incident_id, slack, twilio)
        assert Counter(key_parts(r.idempotency_key) for r in rows if r.status == "sent") == Counter(
            {
                ("initial", "#incidents", "slack"): 1,
                ("page", primary, "slack"): 1,
                ("page", secondary, "sms"): 1,
                ("ack", "#incidents", "slack"): 1,
            }
        )
        assert len(slack.messages(primary_slack)) == 1
        assert twilio.calls_to("GET Messages")  # the retry asked Twilio before sending
    finally:
        if handle is not None:
            with contextlib.suppress(Exception):
                await handle.terminate("test over")
        for proc in (first, second):
            proc.close()
