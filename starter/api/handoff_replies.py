"""The weekly handoff's one-reply and one-click answers.

* SMS (``starter.api.twilio``): ``TEST`` or ``OK`` from a roster phone acknowledges that
  person's SMS test page (of the handoff testing them); ``CONFIRM`` confirms their contact
  details.
* Slack (``starter.api.slack`` interactions): the "Acknowledge test" button on a test page
  acknowledges that method; "Confirm my contact details" on the report confirms them.

Both go through the same calls as ``POST /handoffs/{id}/ack-test`` and ``/confirm``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi.responses import Response

from activities.channels.handoff_slack import ACTION_ACK_TEST, ACTION_CONFIRM, HANDOFF_ACTIONS
from activities.channels.settings import ChannelSettings
from domain.policy import Person
from starter.api.context import ApiContext
from starter.api.errors import ApiError
from starter.api.handoffs import AckTestRequest, ConfirmRequest, ack_test, confirm

log = logging.getLogger(__name__)

_TEST = re.compile(r"^\s*(TEST|OK)\s*[.!]?\s*$", re.IGNORECASE)
_CONFIRM = re.compile(r"^\s*CONFIRM(ED)?\s*[.!]?\s*$", re.IGNORECASE)


async def handoff_sms(ctx: ApiContext, person: Person, body: str) -> str | None:
    """The answer to a handoff SMS reply, or None when ``body`` is not one."""
    try:
        if _TEST.match(body):
            await ack_test(ctx, "latest", AckTestRequest(by=person.name, method="sms", via="sms"))
            return f"Test page acknowledged: SMS reaches {person.label}. Thank you."
        if _CONFIRM.match(body):
            await confirm(ctx, "latest", ConfirmRequest(by=person.name, via="sms"))
            return f"Contact details confirmed for {person.label}. Thank you."
    except ApiError as err:
        return f"Nothing done: {err.detail}"
    except Exception as err:  # Temporal unavailable: Twilio still gets an answer
        log.warning("handoff SMS reply failed: %r", err)
        return "Firewatch could not record that right now; try again or use firewatch ack-test."
    return None


async def handoff_slack_action(
    ctx: ApiContext, settings: ChannelSettings, payload: dict[str, Any], action: dict[str, Any]
) -> Response | None:
    """Handle a handoff button; None when ``action`` is not one of them."""
    from starter.api.chat_common import spawn
    from starter.api.slack import not_on_roster, respond, roster_person

    action_id = str(action.get("action_id"))
    if action_id not in HANDOFF_ACTIONS:
        return None
    user_id = str((payload.get("user") or {}).get("id", ""))
    response_url = payload.get("response_url")
    try:
        target = json.loads(action.get("value") or "{}")
        handoff_id = str(target["h"])
    except (ValueError, KeyError, TypeError):
        return Response(status_code=200)
    person = await roster_person(ctx, settings, user_id)
    if person is None:
        spawn(respond(response_url, not_on_roster(user_id)))
        return Response(status_code=200)
    try:
        if action_id == ACTION_ACK_TEST:
            method = str(target.get("m") or "slack")
            request = AckTestRequest.model_validate(
                {"by": person.name, "method": method, "via": "slack"}
            )
            await ack_test(ctx, handoff_id, request)
            text = f"✅ Test page acknowledged ({method}). Thank you, {person.label}."
        else:
            assert action_id == ACTION_CONFIRM
            await confirm(ctx, handoff_id, ConfirmRequest(by=person.name, via="slack"))
            text = f"✅ Contact details confirmed. Thank you, {person.label}."
    except ApiError as err:
        text = f"⚠️ {err.detail}"
    except Exception as err:
        log.warning("handoff Slack action failed: %r", err)
        text = "⚠️ Firewatch could not record that right now; try again."
    spawn(respond(response_url, text))
    return Response(status_code=200)
