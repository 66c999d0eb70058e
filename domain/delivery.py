"""When a notification has become moot: the rule the workflow applies before and while sending.

A page that is still retrying when its incident is acknowledged must not reach anyone late,
and a reminder to post an update is pointless once the update is there. Messages that are
the incident's record in a channel (opened, acknowledged, update, severity change,
resolution) are never moot: they only arrive late.
"""

from __future__ import annotations

from datetime import datetime

from domain.incident import IncidentState
from domain.messages import MessageKind

# The channel's record of the incident: late is better than never.
RECORD_KINDS = frozenset(
    {
        MessageKind.INITIAL_ALERT,
        MessageKind.ACKNOWLEDGED,
        MessageKind.STATUS_UPDATE,
        MessageKind.SEVERITY_CHANGED,
        MessageKind.RESOLUTION,
        MessageKind.POSTMORTEM_SCHEDULED,
        MessageKind.POSTMORTEM_REMINDER,
        MessageKind.MITIGATION,
    }
)
# Asking someone to act until somebody acknowledges.
UNTIL_ACKNOWLEDGED = frozenset(
    {MessageKind.PAGE, MessageKind.LADDER_REPEAT, MessageKind.LADDER_EXHAUSTED}
)
# Asking for progress until there is some.
UNTIL_PROGRESS = frozenset(
    {MessageKind.UPDATE_REMINDER, MessageKind.UPDATE_OVERDUE, MessageKind.NO_PROGRESS}
)


def moot_reason(kind: MessageKind, due: datetime, state: IncidentState) -> str | None:
    """Why a notification of ``kind`` due at ``due`` should no longer go out, or None."""
    if kind in RECORD_KINDS:
        return None
    if not state.is_open:
        return f"{state.incident_id or 'the incident'} is resolved"
    acked = state.acknowledged_at
    if kind in UNTIL_ACKNOWLEDGED and acked is not None and acked >= due:
        return f"acknowledged by {state.acknowledged_by or 'someone'}"
    progress = state.last_progress_at
    if kind in UNTIL_PROGRESS and progress is not None and progress > due:
        return "progress was reported since"
    return None
