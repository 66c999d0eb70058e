"""``/incident action add|close|verify``: the Slack side of ``firewatch action``.

    /incident action add INC-… dave 2026-12-10 monitoring "Alert on pool saturation"
    /incident action close INC-… 1 https://grafana.example/d/pool
    /incident action verify INC-… 1

The same rules as the API (``starter.api.postmortems``): the actor is the Slack user's roster
person; a refused request changes nothing and is answered with its reason, ephemerally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from domain.ids import parse_incident_id
from domain.policy import Person
from domain.postmortem import (
    TEXT_MAX,
    TITLE_MAX,
    ActionItem,
    AddActionItem,
    CloseActionItem,
    PostmortemError,
    VerifyActionItem,
    parse_kind,
)
from starter.api.chat_common import outcome_text, within
from starter.api.context import ApiContext
from starter.api.errors import ApiError
from starter.api.postmortems import _precheck, _update
from workflows.postmortem import PostMortemWorkflow

ANSWER_WITHIN_S = 2.5  # Slack's limit is 3 s
ACTION_USAGE = (
    '`/incident action add INC-… <owner> <YYYY-MM-DD> <kind> "title"`,'
    " `/incident action close INC-… <item> <link or text>`,"
    " `/incident action verify INC-… <item>`"
)


def _reply(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _line(item: ActionItem, verb: str) -> str:
    return f"✅ {verb} #{item.number} {item.title} ({item.owner}, due {item.due.isoformat()})."


async def action(
    ctx: ApiContext,
    actor: Person,
    words: list[str],
    respond: Callable[[str], Awaitable[None]],
) -> JSONResponse:
    """``words``: what follows ``action``. ``respond`` posts a late outcome (response_url)."""
    if len(words) < 2 or words[0].lower() not in ("add", "close", "verify"):
        return _reply(f"⚠️ {ACTION_USAGE}")
    verb, incident_id, rest = words[0].lower(), words[1], words[2:]
    if parse_incident_id(incident_id) is None:
        return _reply(f"⚠️ Give an incident id (INC-YYYY-MM-DD-###).\n{ACTION_USAGE}")
    request: Any
    update: Any
    try:
        if verb == "add":
            if len(rest) < 4:
                return _reply(f"⚠️ Not enough to go on.\n{ACTION_USAGE}")
            owner, due_word, kind_word, *title_words = rest
            due = date.fromisoformat(due_word)
            _precheck(ctx, owner, due)
            title = " ".join(title_words)[:TITLE_MAX]
            request = AddActionItem(
                by=actor.name, title=title, owner=owner, due=due, kind=parse_kind(kind_word)
            )
            update, done = PostMortemWorkflow.add_action_item, "Added"
        else:
            if not rest or not rest[0].isdigit():
                return _reply(f"⚠️ Give the item's number.\n{ACTION_USAGE}")
            number = int(rest[0])
            if verb == "close":
                evidence = " ".join(rest[1:]).strip()[:TEXT_MAX]
                if not evidence:
                    return _reply("⚠️ Closing an item needs evidence: a link or a sentence.")
                request = CloseActionItem(by=actor.name, number=number, evidence=evidence)
                update, done = PostMortemWorkflow.close_action_item, "Closed"
            else:
                request = VerifyActionItem(by=actor.name, number=number)
                update, done = PostMortemWorkflow.verify_action_item, "Verified"
    except ValidationError as err:
        return _reply(f"⚠️ Not done: {err.errors()[0]['msg']}.")
    except PostmortemError as err:  # an unknown kind
        return _reply(f"⚠️ Not done: {err}.")
    except ValueError:
        return _reply("⚠️ Not done: give the due date as YYYY-MM-DD.")
    except ApiError as err:
        return _reply(f"⚠️ Not done: {err.detail}.")

    def ok(item: ActionItem) -> str:
        return _line(item, done)

    async def late(task: asyncio.Task[Any]) -> None:
        await respond(outcome_text(task, ok))

    finished = await within(_update(ctx, incident_id, update, request), ANSWER_WITHIN_S, late=late)
    if finished is None:
        return _reply(f"Working on {incident_id}…")
    return _reply(outcome_text(finished, ok))
