"""SMS replies: ``ACK <code>`` or ``RESOLVE <code> [what fixed it]`` at POST /twilio/sms.

Point the Twilio number's "A message comes in" webhook at ``{FIREWATCH_PUBLIC_URL}/twilio/sms``.
The ``X-Twilio-Signature`` is validated with FIREWATCH_TWILIO_AUTH_TOKEN over the URL
Twilio called (FIREWATCH_PUBLIC_URL + path when set, since a proxy changes the URL we
see; else the request URL) and the form parameters; anything else gets 403.

The short code is derived from the incident id (``INC-2026-11-26-001`` → ``1126001``:
month, day and the day's number; see ``activities.channels.formatting``), so no state is
shared between worker and API. A code is matched against this year's and last year's
incident; the full ``INC-…`` id is accepted too. The sender's number must belong to a
roster person. The answer is TwiML with one message saying what happened.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from activities.channels.formatting import incident_ids_for_code
from domain.ids import parse_incident_id
from domain.incident import AcknowledgeRequest, IncidentState, ResolveRequest
from starter import incidents as fw
from starter.api.chat_common import (
    channel_settings,
    incident_handle,
    outcome_text,
    person_by_phone,
    within,
)
from starter.api.context import get_ctx
from starter.api.errors import ApiError, ErrorBody
from starter.api.handoff_replies import handoff_sms
from starter.incidents import run_update
from workflows.incident import IncidentWorkflow

log = logging.getLogger(__name__)
router = APIRouter(tags=["twilio"])

ANSWER_WITHIN_S = 10.0  # Twilio waits 15 s for a webhook
_REPLY = re.compile(r"^\s*(ACK|ACKNOWLEDGE|RESOLVE)\s+(\S+)\s*(.*)$", re.IGNORECASE | re.DOTALL)
HELP = "Reply ACK <code> to acknowledge or RESOLVE <code> [what fixed it] to resolve."


def twiml(text: str) -> Response:
    message = f"<Message>{escape(text)}</Message>"
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{message}</Response>'
    return Response(body, media_type="application/xml")


def signed_url(request: Request, public_url: str | None) -> str:
    if not public_url:
        return str(request.url)
    url = public_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def _candidates(ctx: Any, code: str) -> list[str]:
    if parse_incident_id(code) is not None:
        return [code.upper()]
    year = datetime.now(UTC).year
    return incident_ids_for_code(code, [year, year - 1])


@router.post(
    "/twilio/sms",
    summary="SMS replies from Twilio (ACK / RESOLVE <code>)",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "TwiML reply"},
        403: {"model": ErrorBody, "description": "Missing or invalid Twilio signature"},
        404: {"model": ErrorBody, "description": "Twilio is not configured"},
    },
)
async def sms_reply(request: Request) -> Response:
    settings = channel_settings(request)
    if settings.twilio_auth_token is None:
        raise ApiError(404, "Twilio is not configured (FIREWATCH_TWILIO_AUTH_TOKEN)")
    # Twilio posts application/x-www-form-urlencoded (parsed here: no python-multipart).
    params = dict(
        parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
    )
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not signature or not validator.validate(
        signed_url(request, settings.public_url), params, signature
    ):
        raise ApiError(403, "invalid Twilio signature")
    ctx = get_ctx(request)
    sender = params.get("From", "")
    person = person_by_phone(ctx.policy(), sender)
    if person is None:
        log.info("SMS reply from a number not on the roster")
        return twiml("This number is not on the Firewatch roster; nothing was done.")
    handoff = await handoff_sms(ctx, person, params.get("Body", ""))  # TEST / OK / CONFIRM
    if handoff is not None:
        return twiml(handoff)
    match = _REPLY.match(params.get("Body", ""))
    if match is None:
        return twiml(HELP)
    verb, code, rest = match.group(1).upper(), match.group(2), match.group(3).strip()
    candidates = await _candidates(ctx, code)
    if not candidates:
        return twiml(f"Unknown code {code}. {HELP}")

    async def act() -> tuple[str, IncidentState]:
        last: Exception = fw.IncidentNotFound(f"no open incident for code {code}")
        for incident_id in candidates:
            try:
                handle = await incident_handle(ctx, incident_id)
            except fw.IncidentNotFound as err:
                last = err
                continue
            if verb == "RESOLVE":
                request_model: Any = ResolveRequest(
                    by=person.name,
                    root_cause=rest or "Not given (resolved by SMS)",
                    fix=rest or "Not given (resolved by SMS)",
                )
                update: Any = IncidentWorkflow.resolve
            else:
                request_model, update = (
                    AcknowledgeRequest(by=person.name),
                    IncidentWorkflow.acknowledge,
                )
            state = await run_update(handle, update, request_model)
            return incident_id, state
        raise last

    def ok(result: tuple[str, IncidentState]) -> str:
        incident_id, state = result
        if verb == "RESOLVE":
            return f"Resolved {incident_id}. Thank you."
        if state.acknowledged_by not in (None, person.name):
            return f"{incident_id} was already acknowledged by {state.acknowledged_by}."
        return f"Acknowledged {incident_id}. You own it now."

    done = await within(act(), ANSWER_WITHIN_S)
    if done is None:
        return twiml(f"Working on {verb} {code}; check Slack or the CLI for the result.")
    return twiml(outcome_text(done, ok))
