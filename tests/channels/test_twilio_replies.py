"""SMS replies at POST /twilio/sms: ACK / RESOLVE <code>, signed as Twilio signs webhooks.

The page goes out through the local Twilio server; the code is read from the SMS the
fake received, as the person would read it on their phone.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from domain.incident import IncidentState, Status
from domain.policy import Policy
from starter.incidents import open_or_join
from tests.channels.conftest import channel_settings
from tests.channels.fake_twilio import FakeTwilio
from tests.channels.stack import Stack, firewatch_stack, twilio_form, twilio_headers
from tests.workflows.helpers import make_alert, state_of
from worker import ACTIVITY_THREADS
from workflows.incident import IncidentWorkflow

PUBLIC = "https://hooks.example.org/fw"  # where Twilio is told to call us (behind a proxy)
URL = f"{PUBLIC}/twilio/sms"


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        assert isinstance(fake, FakeTwilio)
        yield fake


@pytest.fixture(scope="module")
async def stack(
    namespace_client: Client,
    default_policy: Policy,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = channel_settings(twilio=twilio, public_url=PUBLIC)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with firewatch_stack(
            namespace_client, default_policy, tmp_path_factory.mktemp("sms-data"), settings, pool
        ) as s:
            yield s


async def paged(
    stack: Stack, twilio: FakeTwilio, policy: Policy
) -> tuple[WorkflowHandle[Any, Any], IncidentState, str, str]:
    handle = await open_or_join(stack.client, make_alert("P1"), task_queue=stack.queue)
    await handle.execute_update(IncidentWorkflow.opened)
    for _ in range(200):
        st = await state_of(handle)
        if st.pages:
            break
        await asyncio.sleep(0.05)
    person = policy.roster.person(st.pages[0].person)
    assert person is not None and person.phone
    for _ in range(200):
        sms = [m for m in twilio.sms_to(person.phone) if st.incident_id in m["body"]]
        if sms:
            break
        await asyncio.sleep(0.05)
    match = re.search(r"Reply ACK (\d+) to acknowledge", sms[0]["body"])
    assert match, sms[0]["body"]
    return handle, st, person.phone, match.group(1)


async def reply(
    stack: Stack, from_: str, body: str, *, url: str = URL, token: str | None = None
) -> Any:
    form = twilio_form(from_, body)
    headers = twilio_headers(form, url, **({"token": token} if token else {}))
    return await stack.http.post("/twilio/sms", data=form, headers=headers)


async def test_ack_by_code(stack: Stack, twilio: FakeTwilio, default_policy: Policy) -> None:
    handle, st, phone, code = await paged(stack, twilio, default_policy)
    assert (
        code
        == (st.incident_id or "")[9:11]
        + (st.incident_id or "")[12:14]
        + (st.incident_id or "")[-3:]
    )
    response = await reply(stack, phone, f"ack {code}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert f"<Message>Acknowledged {st.incident_id}. You own it now.</Message>" in response.text
    st = await state_of(handle)
    assert st.status == Status.INVESTIGATING and st.acknowledged_by == st.pages[0].person
    await handle.terminate("test over")


async def test_bad_signatures_and_strangers_change_nothing(
    stack: Stack, twilio: FakeTwilio, default_policy: Policy
) -> None:
    handle, st, phone, code = await paged(stack, twilio, default_policy)
    assert (await reply(stack, phone, f"ACK {code}", token="wrong-token")).status_code == 403
    # Signed for the URL the API sees rather than the public one Twilio called: refused.
    assert (
        await reply(stack, phone, f"ACK {code}", url="https://firewatch.example.com/twilio/sms")
    ).status_code == 403
    form = twilio_form(phone, f"ACK {code}")
    headers = twilio_headers(form, URL)
    form["Body"] = f"RESOLVE {code}"  # tampered after signing
    assert (await stack.http.post("/twilio/sms", data=form, headers=headers)).status_code == 403
    unsigned = await stack.http.post("/twilio/sms", data=twilio_form(phone, f"ACK {code}"))
    assert unsigned.status_code == 403

    response = await reply(stack, "+15559999999", f"ACK {code}")
    assert "not on the Firewatch roster" in response.text
    response = await reply(stack, phone, "hello?")
    assert "Reply ACK &lt;code&gt;" in response.text
    response = await reply(stack, phone, "ACK 9999999")
    assert "Unknown code 9999999" in response.text
    response = await reply(stack, phone, "ACK 0101999")
    assert "no incident INC-" in response.text

    st = await state_of(handle)
    assert st.status == Status.TRIGGERED and st.acknowledged_by is None
    await handle.terminate("test over")


async def test_resolve_by_code_and_by_incident_id(
    stack: Stack, twilio: FakeTwilio, default_policy: Policy
) -> None:
    handle, st, phone, code = await paged(stack, twilio, default_policy)
    response = await reply(stack, phone, f"RESOLVE {code} restarted the api pods")
    assert f"Resolved {st.incident_id}" in response.text
    st = await state_of(handle)
    assert not st.is_open and st.root_cause == "restarted the api pods"
    assert st.resolved_by == st.pages[0].person
    response = await reply(stack, phone, f"ACK {st.incident_id}")
    assert "already resolved" in response.text or "closed" in response.text
