"""Slack buttons on the weekly handoff's messages: "Acknowledge test" on a test page sent
by Slack, "Confirm my contact details" on the handoff report. ``starter.api.handoff_replies``
handles the clicks (``ACTION_ACK_TEST``, ``ACTION_CONFIRM``)."""

from __future__ import annotations

import json
from typing import Any

from activities.models import Notification

ACTION_ACK_TEST = "firewatch_handoff_ack_test"
ACTION_CONFIRM = "firewatch_handoff_confirm"
HANDOFF_ACTIONS = frozenset({ACTION_ACK_TEST, ACTION_CONFIRM})


def _value(note: Notification, **more: str) -> str:
    # The handoff id travels as the note's incident_id (``workflows.handoff``).
    return json.dumps({"h": note.incident_id, "w": note.workflow_id, **more}, separators=(",", ":"))


def handoff_buttons(note: Notification) -> dict[str, Any] | None:
    """The buttons for a handoff note, or None for any other note."""
    if note.kind == "handoff_test_page" and note.person is not None:
        method = note.person.contact_order[0] if note.person.contact_order else "slack"
        button = {
            "type": "button",
            "action_id": ACTION_ACK_TEST,
            "text": {"type": "plain_text", "text": "Acknowledge test"},
            "style": "primary",
            "value": _value(note, m=method),
        }
    elif note.kind == "handoff_report" and note.person is not None:
        button = {
            "type": "button",
            "action_id": ACTION_CONFIRM,
            "text": {"type": "plain_text", "text": "Confirm my contact details"},
            "value": _value(note),
        }
    else:
        return None
    return {"type": "actions", "block_id": "firewatch_handoff", "elements": [button]}
