"""Who a post-mortem tells what, and under which step key (pure; the workflow sends them).

Each notice is ``(message, step, recipient)``; the step key makes its delivery idempotent.
"""

from __future__ import annotations

from typing import TypeVar

from domain.incident import IncidentState
from domain.messages import (
    FollowUpMessage,
    ItemAssignedMessage,
    ItemClosedMessage,
    ItemOverdueMessage,
    ItemOverdueReportMessage,
    ItemReminderMessage,
    MessageParams,
    PostmortemCompletedMessage,
)
from domain.policy import Policy
from domain.postmortem import ActionItem, Notice
from domain.templates import postmortem_responders

M = TypeVar("M", bound=FollowUpMessage)
Recipients = list[tuple[MessageParams | FollowUpMessage, str, str]]  # (message, step, to)


def about(cls: type[M], item: ActionItem, **extra: object) -> M:
    """A message about ``item``: its number, title, owner, due date and kind."""
    fields = {"number": item.number, "title": item.title, "owner": item.owner}
    return cls.model_validate({**fields, "due": item.due, "item_kind": item.kind.value, **extra})


def attendees(incident: IncidentState, policy: Policy) -> list[str]:
    """The seed's attendees: responders, service owners and engineering management."""
    roster = policy.roster
    names = [
        *postmortem_responders(incident, policy),
        roster.team_lead,
        roster.engineering_manager,
    ]
    return list(dict.fromkeys(n for n in names if roster.person(n) is not None))


def verifier(item: ActionItem, policy: Policy) -> str:
    """Who verifies an item (and hears it is overdue): the team lead, or the engineering
    manager for the team lead's own items."""
    roster = policy.roster
    return roster.team_lead if item.owner != roster.team_lead else roster.engineering_manager


def assigned(item: ActionItem, by: str) -> Recipients:
    step = f"action:{item.number}:assigned:{item.assignments}"
    return [(about(ItemAssignedMessage, item, by=by), step, item.owner)]


def closed(item: ActionItem, by: str, policy: Policy) -> Recipients:
    notice = about(ItemClosedMessage, item, by=by, evidence=item.evidence or "")
    return [(notice, f"action:{item.number}:closed", verifier(item, policy))]


def item_notice(item: ActionItem, notice: Notice, policy: Policy) -> Recipients:
    """The reminder before the due date, or an overdue notice to the owner and the verifier."""
    base = f"action:{item.number}:{item.due.isoformat()}"
    if notice.event == "reminder":
        return [(about(ItemReminderMessage, item), f"{base}:reminder", item.owner)]
    step, n = f"{base}:overdue:{notice.count}", notice.count
    return [
        (about(ItemOverdueMessage, item, notice=n), step, item.owner),
        (about(ItemOverdueReportMessage, item, notice=n), step, verifier(item, policy)),
    ]


def completed(by: str, items: int, to: list[str]) -> Recipients:
    done = PostmortemCompletedMessage(by=by, items=items)
    return [(done, "pm-completed", name) for name in to]
