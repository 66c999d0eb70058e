"""The weekly follow-up (the seed's "Follow-up: Weekly review in team meetings").

One digest a week, to #engineering and the team lead (``firewatch followup`` prints the
same): open action items by owner, overdue first; post-mortems still missing their meeting
or their lessons; and the P3 weekly review, open P3 incidents with age and assignee (the
seed's P3 "Escalation: Weekly review"). Pure: the gathering is ``activities.followup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from domain.durations import format_duration
from domain.policy import Policy

FOLLOWUP_KIND = "weekly_followup"


class OpenItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: str
    number: int
    title: str
    owner: str
    due: date
    overdue: bool
    status: str  # open, closed (waiting to be verified)


class UnfinishedPostmortem(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: str
    summary: str
    review_at: datetime
    held: bool
    lessons: bool


class OpenP3(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: str
    summary: str | None
    service: str | None
    status: str | None
    assignee: str | None
    opened_at: datetime | None


class FollowUpFacts(BaseModel):
    """What the digest is made from, as gathered at ``at``."""

    at: datetime
    items: list[OpenItem]
    postmortems: list[UnfinishedPostmortem]
    p3: list[OpenP3]


class Digest(BaseModel):
    subject: str
    text: str


def _name(policy: Policy, who: str | None) -> str:
    if not who:
        return "nobody"
    person = policy.roster.person(who)
    return person.label if person is not None else who


def by_owner(items: Sequence[OpenItem]) -> list[tuple[str, list[OpenItem]]]:
    """Owners with overdue items first (most overdue first), then the rest by name; each
    owner's items overdue first, then by due date."""
    owners: dict[str, list[OpenItem]] = {}
    for item in items:
        owners.setdefault(item.owner, []).append(item)
    for mine in owners.values():
        mine.sort(key=lambda i: (not i.overdue, i.due, i.incident_id, i.number))
    return sorted(
        owners.items(),
        key=lambda kv: (-sum(i.overdue for i in kv[1]), kv[1][0].due, kv[0]),
    )


def render_digest(facts: FollowUpFacts, policy: Policy) -> Digest:
    """The digest's text: what #engineering and the team lead read each week."""
    zone = ZoneInfo(policy.business_hours.timezone)
    local = facts.at.astimezone(zone)
    overdue = sum(i.overdue for i in facts.items)
    subject = (
        f"Weekly follow-up {local:%Y-%m-%d}: {len(facts.items)} open action item(s)"
        f" ({overdue} overdue), {len(facts.postmortems)} post-mortem(s) unfinished,"
        f" {len(facts.p3)} open P3"
    )
    lines = [f"📋 **Weekly follow-up - {policy.team} - {local:%a %d %b %Y}** 📋", ""]
    lines.append(f"**Open action items** ({len(facts.items)}, {overdue} overdue)")
    if not facts.items:
        lines.append("- none")
    for owner, mine in by_owner(facts.items):
        lines.append(f"- {_name(policy, owner)}:")
        for i in mine:
            state = "OVERDUE" if i.overdue else "due"
            waiting = ", closed, waiting for verification" if i.status == "closed" else ""
            lines.append(
                f"  - {state} {i.due:%a %d %b}: {i.title} ({i.incident_id} #{i.number}{waiting})"
            )
    lines += ["", f"**Post-mortems not finished** ({len(facts.postmortems)})"]
    if not facts.postmortems:
        lines.append("- none")
    for pm in sorted(facts.postmortems, key=lambda p: p.review_at):
        missing = [
            w for w, done in (("meeting", pm.held), ("lessons learned", pm.lessons)) if not done
        ]
        lines.append(
            f"- {pm.incident_id} {pm.summary}: missing {' and '.join(missing) or 'verified items'}"
            f" (review {pm.review_at.astimezone(zone):%a %d %b %H:%M %Z})"
        )
    lines += ["", f"**P3 weekly review** ({len(facts.p3)} open)"]
    if not facts.p3:
        lines.append("- none")
    for p3 in sorted(facts.p3, key=lambda r: r.opened_at or facts.at):
        age = format_duration(facts.at - p3.opened_at) if p3.opened_at else "?"
        lines.append(
            f"- {p3.incident_id} {p3.service or '?'}: {p3.summary or '(no summary)'}"
            f" · {p3.status or '?'} · {_name(policy, p3.assignee)} · open {age}"
        )
    lines += ["", "#followup #weekly-review"]
    return Digest(subject=subject, text="\n".join(lines))
