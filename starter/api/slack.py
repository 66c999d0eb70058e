"""Slack: the incident message's buttons, the Resolve modal, and the /incident command.

    POST /slack/interactions   block_actions (Acknowledge / Escalate / Resolve buttons) and
                               view_submission (the Resolve modal)
    POST /slack/commands       /incident declare P1 api "summary"
                               /incident update INC-2026-11-26-001 "text"
                               /incident ack INC-2026-11-26-001

Every request's ``X-Slack-Signature`` is checked against FIREWATCH_SLACK_SIGNING_SECRET
(v0 HMAC-SHA256 of ``v0:{timestamp}:{body}``); a timestamp more than 5 minutes away is
refused (replay protection). The Slack user must be on the roster: by ``slack_user_id``,
else by the roster email that ``users.lookupByEmail`` maps to them; others get an
ephemeral refusal and nothing happens.

Slack wants an answer within 3 s. The work is a Temporal update; if it has not finished
within 2.5 s the endpoint answers anyway and posts the outcome to the interaction's
``response_url`` when it comes. Updates carry Slack's ``trigger_id`` as their update id
(a retried delivery of the same click is one update), and a second click on the same
button by the same person within a few seconds is ignored: a double click is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk.signature import SignatureVerifier

from activities.channels.base import DeliveryError
from activities.channels.settings import ChannelSettings
from activities.channels.slack import (
    ACTION_ACK,
    ACTION_APPROVE,
    ACTION_DECLINE,
    ACTION_DIAGNOSE,
    ACTION_ESCALATE,
    ACTION_MITIGATE,
    ACTION_RESOLVE,
    slack_call,
    slack_client,
)
from domain.ids import parse_incident_id, readable_dedup_key
from domain.incident import (
    AcknowledgeRequest,
    Alert,
    DetectionMethod,
    DiagnosticsRequest,
    EscalateRequest,
    IncidentState,
    MitigationDecision,
    MitigationRequest,
    ResolveRequest,
    StatusUpdateRequest,
    TicketFields,
)
from domain.policy import Person, Severity
from starter import incidents as fw
from starter.api import slack_postmortem, slack_schedule
from starter.api.chat_common import (
    RecentActions,
    channel_settings,
    incident_handle,
    outcome_text,
    spawn,
    within,
)
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import ApiError, ErrorBody
from starter.api.handoff_replies import handoff_slack_action
from starter.incidents import run_update
from workflows.incident import IncidentWorkflow

log = logging.getLogger(__name__)
router = APIRouter(tags=["slack"])

ANSWER_WITHIN_S = 2.5  # Slack's limit is 3 s
MAX_AGE_S = 60 * 5
RESOLVE_VIEW = "firewatch_resolve"
USAGE = (
    "Usage:\n"
    '• `/incident declare P1 api "summary"`\n'
    '• `/incident update INC-YYYY-MM-DD-### "what changed"`\n'
    "• `/incident ack INC-YYYY-MM-DD-###`\n"
    f"• {slack_schedule.ONCALL_USAGE}\n"
    f"• {slack_schedule.OVERRIDE_USAGE}\n"
    f"• {slack_postmortem.ACTION_USAGE}"
)
_recent = RecentActions()
_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "No interaction payload"},
    401: {"model": ErrorBody, "description": "Missing, invalid or stale Slack signature"},
    404: {"model": ErrorBody, "description": "Slack is not configured"},
}
_email_ids: dict[str, tuple[str | None, float]] = {}  # roster email → Slack id (10 min cache)


# ---- request checks ---------------------------------------------------------------------


async def verified_body(request: Request, settings: ChannelSettings) -> bytes:
    if settings.slack_signing_secret is None:
        raise ApiError(404, "Slack is not configured (FIREWATCH_SLACK_SIGNING_SECRET)")
    body = await request.body()
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        raise ApiError(401, "missing X-Slack-Signature / X-Slack-Request-Timestamp")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise ApiError(401, "bad X-Slack-Request-Timestamp") from None
    if age > MAX_AGE_S:
        raise ApiError(401, "stale Slack request (timestamp more than 5 minutes away)")
    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise ApiError(401, "invalid Slack signature")
    return body


async def roster_person(ctx: ApiContext, settings: ChannelSettings, user_id: str) -> Person | None:
    """The roster person behind a Slack user: by slack_user_id, else by email."""
    people = ctx.policy().roster.people
    for person in people:
        if person.slack_user_id and person.slack_user_id == user_id:
            return person
    if settings.slack_bot_token is None:
        return None
    client = slack_client(settings)
    now = time.monotonic()
    for person in people:
        if person.slack_user_id or not person.email:
            continue
        cached = _email_ids.get(person.email.lower())
        if cached is None or now - cached[1] > 600:
            try:
                found = await slack_call(
                    client.users_lookupByEmail(email=person.email), "users.lookupByEmail"
                )
                cached = (str(found["user"]["id"]), now)
            except DeliveryError:
                cached = (None, now)
            _email_ids[person.email.lower()] = cached
        if cached[0] == user_id:
            return person
    return None


def ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


async def respond(url: str | None, text: str) -> None:
    """An ephemeral message to the person who clicked (Slack's response_url)."""
    if not url:
        return
    body = {"response_type": "ephemeral", "replace_original": False, "text": text}
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await http.post(url, json=body)
    except httpx.HTTPError as err:
        log.warning("Slack response_url failed: %s", err)


def not_on_roster(user_id: str) -> str:
    return (
        f"⛔ <@{user_id}> is not on the Firewatch roster, so Firewatch will not act on this. "
        "Ask the team lead to add your Slack user id (or email) to the policy."
    )


# ---- interactions -------------------------------------------------------------------------


@router.post(
    "/slack/interactions", summary="Slack interactivity (buttons, modals)", responses=_REFUSALS
)
async def interactions(request: Request) -> Response:
    settings = channel_settings(request)
    body = await verified_body(request, settings)
    form = dict(httpx.QueryParams(body.decode()))
    try:
        payload = json.loads(form.get("payload", ""))
    except ValueError:
        raise ApiError(400, "no interaction payload") from None
    ctx = get_ctx(request)
    kind = payload.get("type")
    if kind == "block_actions":
        return await _block_action(ctx, settings, payload)
    if kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == RESOLVE_VIEW:
        return await _resolve_submitted(ctx, settings, payload)
    return Response(status_code=200)


async def _block_action(
    ctx: ApiContext, settings: ChannelSettings, payload: dict[str, Any]
) -> Response:
    actions = payload.get("actions") or []
    user_id = str((payload.get("user") or {}).get("id", ""))
    response_url = payload.get("response_url")
    if not actions:
        return Response(status_code=200)
    action = actions[0]
    action_id = str(action.get("action_id"))
    handoff = await handoff_slack_action(ctx, settings, payload, action)  # handoff buttons
    if handoff is not None:
        return handoff
    if action_id not in _ACTIONS and action_id != ACTION_RESOLVE:
        return Response(status_code=200)
    # Buttons carry their target in ``value``; the Mitigate… menu in the chosen option's.
    raw = action.get("value") or (action.get("selected_option") or {}).get("value") or "{}"
    try:
        target = json.loads(raw)
        incident_id, workflow_id = str(target["i"]), str(target["w"])
    except (ValueError, KeyError, TypeError):
        return Response(status_code=200)
    person = await roster_person(ctx, settings, user_id)
    if person is None:
        spawn(respond(response_url, not_on_roster(user_id)))
        return Response(status_code=200)
    detail = str(target.get("a") or target.get("n") or "")
    if not _recent.first(user_id, f"{action_id}:{detail}", incident_id):
        return Response(status_code=200)  # a double click: the first one is being handled
    if action_id == ACTION_RESOLVE:
        await _open_resolve_modal(settings, payload, incident_id, workflow_id, response_url)
        return Response(status_code=200)
    update_id = f"slack-{payload.get('trigger_id') or uuid.uuid4().hex}"
    update, request, ok = _ACTIONS[action_id](person, incident_id, target)

    async def act() -> IncidentState:
        handle = await incident_handle(ctx, incident_id, workflow_id)
        return await run_update(handle, update, request, update_id)

    async def tell(task: asyncio.Task[IncidentState]) -> None:
        await respond(response_url, outcome_text(task, ok))

    done = await within(act(), ANSWER_WITHIN_S, late=tell)
    if done is not None:
        spawn(tell(done))
    return Response(status_code=200)


Reply = Callable[[IncidentState], str]


def _acknowledge(person: Person, incident_id: str, _: dict[str, Any]) -> tuple[Any, Any, Reply]:
    def ok(state: IncidentState) -> str:
        who = state.acknowledged_by or person.name
        if who == person.name:
            return f"✅ You acknowledged {incident_id}."
        return f"{incident_id} was already acknowledged by {who}."

    return IncidentWorkflow.acknowledge, AcknowledgeRequest(by=person.name), ok


def _escalate(person: Person, incident_id: str, _: dict[str, Any]) -> tuple[Any, Any, Reply]:
    request = EscalateRequest(by=person.name, reason="from Slack")
    return IncidentWorkflow.escalate, request, lambda _state: f"⏫ {incident_id} escalated."


def _diagnose(person: Person, incident_id: str, _: dict[str, Any]) -> tuple[Any, Any, Reply]:
    def ok(state: IncidentState) -> str:
        number = state.runbook_runs_started
        return f"🔎 Diagnostics #{number} started for {incident_id}; results follow in the thread."

    return IncidentWorkflow.run_diagnostics, DiagnosticsRequest(by=person.name), ok


def _mitigate(person: Person, incident_id: str, target: dict[str, Any]) -> tuple[Any, Any, Reply]:
    action = str(target.get("a") or "")

    def ok(state: IncidentState) -> str:
        proposal = state.mitigations[-1] if state.mitigations else None
        if proposal is None:
            return f"{action} proposed."
        if proposal.status.value == "proposed":
            return f"🛠 You proposed #{proposal.number} {action}; it runs once approved."
        return f"🛠 #{proposal.number} {action} is {proposal.status.value}."

    request = MitigationRequest(by=person.name, action=action, reason="from Slack")
    return IncidentWorkflow.propose_mitigation, request, ok


def _decision(approve: bool) -> Callable[[Person, str, dict[str, Any]], tuple[Any, Any, Reply]]:
    def build(person: Person, incident_id: str, target: dict[str, Any]) -> tuple[Any, Any, Reply]:
        number = int(str(target.get("n"))) if str(target.get("n")).isdigit() else 1
        verb = "approved" if approve else "declined"
        request = MitigationDecision(by=person.name, proposal=max(number, 1), approve=approve)
        return (
            IncidentWorkflow.decide_mitigation,
            request,
            lambda _state: f"You {verb} #{number} on {incident_id}.",
        )

    return build


_ACTIONS: dict[str, Callable[[Person, str, dict[str, Any]], tuple[Any, Any, Reply]]] = {
    ACTION_ACK: _acknowledge,
    ACTION_ESCALATE: _escalate,
    ACTION_DIAGNOSE: _diagnose,
    ACTION_MITIGATE: _mitigate,
    ACTION_APPROVE: _decision(approve=True),
    ACTION_DECLINE: _decision(approve=False),
}


def resolve_view(incident_id: str, workflow_id: str, response_url: str | None) -> dict[str, Any]:
    meta = json.dumps({"i": incident_id, "w": workflow_id, "r": response_url or ""})
    return {
        "type": "modal",
        "callback_id": RESOLVE_VIEW,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Resolve incident"},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Resolve *{incident_id}*"},
            },
            _text_input("root_cause", "Root cause"),
            _text_input("fix", "Fix applied"),
            *TICKET_BLOCKS,
            {
                "type": "input",
                "block_id": "false_positive",
                "optional": True,
                "label": {"type": "plain_text", "text": "False positive"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [
                        {
                            "text": {
                                "type": "plain_text",
                                "text": "This alert was a false positive",
                            },
                            "value": "yes",
                        }
                    ],
                },
            },
        ],
    }


async def _open_resolve_modal(
    settings: ChannelSettings,
    payload: dict[str, Any],
    incident_id: str,
    workflow_id: str,
    response_url: str | None,
) -> None:
    trigger_id = payload.get("trigger_id")
    if settings.slack_bot_token is None or not trigger_id:
        await respond(response_url, "⚠️ Slack is not fully configured: cannot open the form.")
        return
    try:
        await slack_call(
            slack_client(settings).views_open(
                trigger_id=trigger_id, view=resolve_view(incident_id, workflow_id, response_url)
            ),
            "views.open",
        )
    except DeliveryError as err:
        log.warning("views.open failed: %s", err.reason)
        spawn(respond(response_url, f"⚠️ Could not open the resolve form: {err.reason}"))


def _input(values: dict[str, Any], block: str) -> Any:
    return (values.get(block) or {}).get("value") or {}


async def _resolve_submitted(
    ctx: ApiContext, settings: ChannelSettings, payload: dict[str, Any]
) -> Response:
    view = payload.get("view") or {}
    user_id = str((payload.get("user") or {}).get("id", ""))
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        incident_id, workflow_id = str(meta["i"]), str(meta["w"])
    except (ValueError, KeyError, TypeError):
        return Response(status_code=200)
    response_url = meta.get("r") or None
    values = (view.get("state") or {}).get("values") or {}
    root_cause = str(_input(values, "root_cause").get("value") or "").strip()
    fix = str(_input(values, "fix").get("value") or "").strip()
    false_positive = bool(_input(values, "false_positive").get("selected_options"))
    errors: dict[str, str] = {}
    if not root_cause:
        errors["root_cause"] = "Say what caused it"
    if not fix:
        errors["fix"] = "Say what fixed it"
    person = await roster_person(ctx, settings, user_id)
    if person is None:
        errors["root_cause"] = "You are not on the Firewatch roster"
    if errors:
        return JSONResponse({"response_action": "errors", "errors": errors})
    assert person is not None
    request = ResolveRequest(
        by=person.name,
        root_cause=root_cause,
        fix=fix,
        false_positive=false_positive,
        ticket=ticket_fields(values),
    )
    update_id = f"slack-{view.get('id') or uuid.uuid4().hex}"

    async def act() -> IncidentState:
        handle = await incident_handle(ctx, incident_id, workflow_id)
        return await run_update(handle, IncidentWorkflow.resolve, request, update_id)

    async def tell(task: asyncio.Task[IncidentState]) -> None:
        await respond(response_url, outcome_text(task, lambda _: f"✅ {incident_id} resolved."))

    done = await within(act(), ANSWER_WITHIN_S, late=tell)
    if done is not None and done.exception() is not None:
        message = outcome_text(done, lambda _: "")
        return JSONResponse({"response_action": "errors", "errors": {"root_cause": message}})
    if done is not None:
        spawn(tell(done))
    return Response(status_code=200)  # closes the modal


# ---- /incident ------------------------------------------------------------------------------


@router.post("/slack/commands", summary="The /incident slash command", responses=_REFUSALS)
async def commands(request: Request) -> Response:
    settings = channel_settings(request)
    body = await verified_body(request, settings)
    form = dict(httpx.QueryParams(body.decode()))
    ctx = get_ctx(request)
    user_id = form.get("user_id", "")
    response_url = form.get("response_url")
    try:
        words = shlex.split(form.get("text", ""))
    except ValueError:
        return ephemeral("⚠️ Unbalanced quotes.\n" + USAGE)
    verbs = ("declare", "update", "ack", "oncall", "override", "action")
    if not words or words[0].lower() not in verbs:
        return ephemeral(USAGE)
    person = await roster_person(ctx, settings, user_id)
    if person is None:
        return ephemeral(not_on_roster(user_id))
    verb = words[0].lower()
    if verb == "oncall":
        return await slack_schedule.oncall(ctx, words[1:])
    if verb == "override":
        return await slack_schedule.override(ctx, person, words[1:])
    if verb == "action":
        return await slack_postmortem.action(
            ctx, person, words[1:], lambda text: respond(response_url, text)
        )
    if verb == "declare":
        return await _declare(ctx, person, words[1:], form, response_url)
    if len(words) < 2 or parse_incident_id(words[1]) is None:
        return ephemeral(f"⚠️ Give an incident id (INC-YYYY-MM-DD-###).\n{USAGE}")
    incident_id = words[1]
    if verb == "update":
        message = " ".join(words[2:]).strip()
        if not message:
            return ephemeral(f"⚠️ Say what changed.\n{USAGE}")
        request_model: Any = StatusUpdateRequest(by=person.name, message=message[:4000])
        update: Any = IncidentWorkflow.post_update
        done_text = f"📊 Update posted to {incident_id}."
    else:
        request_model = AcknowledgeRequest(by=person.name)
        update = IncidentWorkflow.acknowledge
        done_text = f"✅ You acknowledged {incident_id}."
    update_id = f"slack-{form.get('trigger_id') or uuid.uuid4().hex}"

    def ok(state: IncidentState) -> str:
        if verb == "ack" and state.acknowledged_by not in (None, person.name):
            return f"{incident_id} was already acknowledged by {state.acknowledged_by}."
        return done_text

    async def act() -> IncidentState:
        handle = await incident_handle(ctx, incident_id)
        return await run_update(handle, update, request_model, update_id)

    async def tell(task: asyncio.Task[IncidentState]) -> None:
        await respond(response_url, outcome_text(task, ok))

    done = await within(act(), ANSWER_WITHIN_S, late=tell)
    if done is None:
        return ephemeral(f"Working on {incident_id}…")
    return ephemeral(outcome_text(done, ok))


async def _declare(
    ctx: ApiContext,
    person: Person,
    words: list[str],
    form: dict[str, str],
    response_url: str | None,
) -> Response:
    if len(words) < 3 or words[0].upper() not in Severity.__members__:
        return ephemeral(f'⚠️ `/incident declare <P0-P3> <service> "summary"`\n{USAGE}')
    severity, service, summary = Severity(words[0].upper()), words[1], " ".join(words[2:]).strip()
    # The trigger id keys the incident: Slack retrying this command joins the same one. The
    # service and summary make its workflow id read in the Temporal UI.
    trigger_id = form.get("trigger_id") or uuid.uuid4().hex
    key = "slack-" + readable_dedup_key(service, summary, nonce=trigger_id)[:249]
    alert = Alert(
        source="slack",
        dedup_key=key,
        summary=summary[:1024],
        service=service[:200],
        severity=severity,
        details={"declared_by": person.name, "slack_channel": form.get("channel_id", "")},
    )

    async def act() -> IncidentState:
        return await fw.trigger(await ctx.client(), alert, task_queue=ctx.settings.task_queue)

    def ok(state: IncidentState) -> str:
        return f"🚨 Declared {state.incident_id}: {severity.value} {service}: {summary}"

    async def tell(task: asyncio.Task[IncidentState]) -> None:
        await respond(response_url, outcome_text(task, ok))

    done = await within(act(), ANSWER_WITHIN_S, late=tell)
    if done is None:
        return ephemeral(f"Declaring {severity.value} {service}: {summary}…")
    return ephemeral(outcome_text(done, ok))


def _text_input(block_id: str, label: str, *, optional: bool = False) -> dict[str, Any]:
    """A multi-line text field of the resolve modal; its value is ``value``."""
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": True,
            "max_length": 4000,
        },
    }


def _select(block_id: str, label: str, options: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "static_select",
            "action_id": "value",
            "options": [
                {"text": {"type": "plain_text", "text": text}, "value": value}
                for value, text in options.items()
            ],
        },
    }


# The Incident Report's fields, optional in the resolve form (firewatch ticket sets them too).
TICKET_TEXTS = {
    "user_impact": "User impact",
    "business_impact": "Business impact",
    "contributing_factors": "Contributing factors",
    "immediate_actions": "Immediate actions",
    "workaround": "Temporary workaround",
    "prevention_short_term": "Prevention: short-term",
    "prevention_long_term": "Prevention: long-term",
    "monitoring_improvements": "Monitoring improvements",
    "process_changes": "Process changes",
    "what_went_well": "What went well",
    "areas_for_improvement": "Areas for improvement",
}
TICKET_BLOCKS = [
    *(_text_input(name, label, optional=True) for name, label in TICKET_TEXTS.items()),
    _select("data_loss", "Data loss", {"no": "No", "yes": "Yes"}),
    _select("detection_method", "Detection method", {m.value: m.value for m in DetectionMethod}),
    {
        "type": "input",
        "block_id": "customer_impact_hours",
        "optional": True,
        "label": {"type": "plain_text", "text": "Customer impact hours"},
        "element": {
            "type": "number_input",
            "action_id": "value",
            "is_decimal_allowed": True,
            "min_value": "0",
        },
    },
]


def ticket_fields(values: dict[str, Any]) -> TicketFields | None:
    """The ticket fields filled in on the resolve form (None: none were)."""
    given: dict[str, Any] = {}
    for name in TICKET_TEXTS:
        text = str(_input(values, name).get("value") or "").strip()
        if text:
            given[name] = text
    loss = (_input(values, "data_loss").get("selected_option") or {}).get("value")
    if loss in ("yes", "no"):
        given["data_loss"] = loss == "yes"
    how = (_input(values, "detection_method").get("selected_option") or {}).get("value")
    if how in {m.value for m in DetectionMethod}:
        given["detection_method"] = DetectionMethod(how)
    hours = str(_input(values, "customer_impact_hours").get("value") or "").strip()
    if hours:
        with contextlib.suppress(ValueError):  # Slack's number input sends a number
            given["customer_impact_hours"] = max(float(hours), 0.0)
    return TicketFields(**given) if given else None
