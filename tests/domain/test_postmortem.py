"""The post-mortem's follow-through rules (domain.postmortem): stages, action items,
validation, the reminder/overdue schedule and the completion rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import postmortem as pm
from domain.messages import FollowUpKind, FollowUpMessage, ItemOverdueMessage
from domain.postmortem import (
    ActionItemKind,
    AddActionItem,
    CloseActionItem,
    CompletePostmortem,
    EditActionItem,
    ItemStatus,
    PostmortemError,
    PostmortemProgress,
    RecordMeeting,
    RescheduleReview,
    Stage,
    VerifyActionItem,
)
from domain.postmortem_notices import attendees
from domain.postmortem_texts import render_follow_up
from domain.templates import postmortem_attendees
from tests.domain.support import incident, policy

# Friday 2026-11-27 16:00 UTC = 11:00 in New York (the shipped policy's time zone).
NOW = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
HOURS = policy().business_hours


def _progress(**changes: object) -> PostmortemProgress:
    base = PostmortemProgress(review_at=NOW + timedelta(hours=2), document_path="pm.md")
    return base.model_copy(update=changes)


def _add(p: PostmortemProgress, owner: str = "dave", due: date = date(2026, 12, 10)) -> int:
    req = AddActionItem(
        by="erin", title="Alert on pool saturation", owner=owner, due=due, kind="monitoring"
    )
    pm.validate_add(p, req, policy(), NOW)
    return pm.add_item(p, req, policy(), NOW).number


def _held(p: PostmortemProgress, lessons: bool = True) -> None:
    notes = {"what_went_well": "Fast ack", "areas_for_improvement": "Alerting"} if lessons else {}
    pm.record_meeting(p, RecordMeeting(by="erin", **notes), NOW)


# ---- time --------------------------------------------------------------------------------


def test_an_item_is_overdue_from_the_end_of_its_due_date_in_the_teams_time_zone() -> None:
    assert pm.due_at(date(2026, 12, 10), HOURS) == datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
    # Summer time: New York is UTC-4.
    assert pm.due_at(date(2026, 7, 1), HOURS) == datetime(2026, 7, 2, 4, 0, tzinfo=UTC)


def test_the_owner_is_reminded_at_the_start_of_business_the_day_before() -> None:
    assert pm.reminder_at(date(2026, 12, 10), HOURS) == datetime(2026, 12, 9, 14, 0, tzinfo=UTC)


def test_notices_reminder_then_overdue_then_weekly() -> None:
    p = _progress()
    item = p.items[_add(p) - 1]
    first = pm.next_notice(item, HOURS)
    assert first is not None and first.event == "reminder"
    assert first.at == datetime(2026, 12, 9, 14, 0, tzinfo=UTC)
    assert pm.due_notices(p.items, HOURS, first.at - timedelta(seconds=1)) == []
    [notice] = pm.due_notices(p.items, HOURS, first.at)
    pm.record_notice(item, notice)
    overdue = pm.next_notice(item, HOURS)
    assert overdue is not None and (overdue.event, overdue.count) == ("overdue", 1)
    assert overdue.at == datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
    pm.record_notice(item, overdue)
    weekly = pm.next_notice(item, HOURS)
    assert weekly is not None and weekly.count == 2
    assert weekly.at == overdue.at + timedelta(days=7)
    assert pm.next_wakeup(p, HOURS) == weekly.at
    pm.close_item(p, CloseActionItem(by="dave", number=1, evidence="https://x"), NOW)
    assert pm.next_notice(item, HOURS) is None and pm.next_wakeup(p, HOURS) is None


def test_a_reminder_overtaken_by_the_due_date_becomes_the_overdue_notice() -> None:
    p = _progress()
    item = p.items[_add(p) - 1]
    late = pm.due_at(item.due, HOURS) + timedelta(hours=3)
    [notice] = pm.due_notices(p.items, HOURS, late)
    assert (notice.event, notice.count) == ("overdue", 1)
    pm.record_notice(item, notice)
    assert item.reminded and item.overdue_notices == 1


def test_an_item_due_tomorrow_gets_no_late_reminder() -> None:
    p = _progress()
    item = p.items[_add(p, due=date(2026, 11, 28)) - 1]  # reminder was 09:00 today
    assert item.reminded
    notice = pm.next_notice(item, HOURS)
    assert notice is not None and notice.event == "overdue"


def test_moving_the_due_date_starts_its_notices_again() -> None:
    p = _progress()
    item = p.items[_add(p) - 1]
    item.reminded, item.overdue_notices = True, 2
    edit = EditActionItem(by="erin", number=1, due=date(2026, 12, 20))
    pm.validate_edit(p, edit, policy(), NOW)
    assert not pm.edit_item(p, edit, policy(), NOW)  # same owner: nobody newly assigned
    assert (item.reminded, item.overdue_notices) == (False, 0)
    assert pm.edit_item(p, EditActionItem(by="erin", number=1, owner="carol"), policy(), NOW)
    assert item.owner == "carol" and item.assignments == 2


def test_closed_on_time_is_by_the_end_of_the_due_date() -> None:
    p = _progress()
    item = p.items[_add(p) - 1]
    assert pm.closed_on_time(item, HOURS) is None
    item.closed_at = pm.due_at(item.due, HOURS) - timedelta(seconds=1)
    assert pm.closed_on_time(item, HOURS) is True
    item.closed_at = pm.due_at(item.due, HOURS)
    assert pm.closed_on_time(item, HOURS) is False


# ---- kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("monitoring", ActionItemKind.MONITORING),
        ("Monitoring improvement", ActionItemKind.MONITORING),
        ("runbook-update", ActionItemKind.RUNBOOK),
        ("process_change", ActionItemKind.PROCESS),
        ("PREVENTION", ActionItemKind.PREVENTION),
        ("training", ActionItemKind.TRAINING),
    ],
)
def test_kinds_by_name_or_title(text: str, kind: ActionItemKind) -> None:
    assert pm.parse_kind(text) == kind


def test_an_unknown_kind_names_the_choices() -> None:
    with pytest.raises(PostmortemError, match="prevention, monitoring, runbook"):
        pm.parse_kind("docs")


# ---- validation --------------------------------------------------------------------------


def test_an_owner_must_be_on_the_roster() -> None:
    p = _progress()
    req = AddActionItem(
        by="erin", title="x", owner="mallory", due=date(2026, 12, 10), kind="training"
    )
    with pytest.raises(PostmortemError, match="owner 'mallory' is not on the roster"):
        pm.validate_add(p, req, policy(), NOW)


def test_a_due_date_must_not_be_in_the_past_in_the_teams_time_zone() -> None:
    p = _progress()
    # 01:00 UTC on the 28th is still the 27th in New York: the 27th is today, not past.
    night = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    today = AddActionItem(
        by="erin", title="x", owner="dave", due=date(2026, 11, 27), kind="training"
    )
    pm.validate_add(p, today, policy(), night)
    past = today.model_copy(update={"due": date(2026, 11, 26)})
    with pytest.raises(
        PostmortemError, match=r"due date 2026-11-26 is in the past \(today is 2026-11-27"
    ):
        pm.validate_add(p, past, policy(), night)


def test_an_item_is_verified_by_someone_other_than_its_owner() -> None:
    p = _progress()
    _add(p)
    with pytest.raises(PostmortemError, match="open: close it with evidence first"):
        pm.validate_verify(p, VerifyActionItem(by="erin", number=1), policy())
    close = CloseActionItem(by="dave", number=1, evidence="https://grafana/d/pool")
    pm.validate_close(p, close, policy())
    pm.close_item(p, close, NOW)
    with pytest.raises(PostmortemError, match="is closed already"):
        pm.validate_close(p, close, policy())
    with pytest.raises(PostmortemError, match="someone other than its owner \\(dave\\)"):
        pm.validate_verify(p, VerifyActionItem(by="dave", number=1), policy())
    pm.validate_verify(p, VerifyActionItem(by="erin", number=1), policy())
    item = pm.verify_item(p, VerifyActionItem(by="erin", number=1), NOW)
    assert item.status == ItemStatus.VERIFIED and item.verified_by == "erin"
    with pytest.raises(PostmortemError, match="is verified; it cannot change"):
        pm.validate_edit(p, EditActionItem(by="erin", number=1, title="y"), policy(), NOW)


def test_unknown_items_and_empty_edits_are_rejected() -> None:
    p = _progress()
    with pytest.raises(PostmortemError, match=r"no action item #3 \(items: none yet\)"):
        pm.validate_close(p, CloseActionItem(by="dave", number=3, evidence="x"), policy())
    _add(p)
    with pytest.raises(PostmortemError, match="nothing to change"):
        pm.validate_edit(p, EditActionItem(by="erin", number=1), policy(), NOW)


def test_the_review_is_rescheduled_into_the_future_until_it_is_held() -> None:
    p = _progress()
    later = RescheduleReview(by="erin", review_at=NOW + timedelta(hours=5))
    pm.validate_reschedule(p, later, policy(), NOW)
    pm.reschedule(p, later)
    assert p.review_at == later.review_at and p.reschedules == 1
    with pytest.raises(PostmortemError, match="is not in the future"):
        pm.validate_reschedule(p, later, policy(), NOW + timedelta(hours=6))
    _held(p)
    with pytest.raises(PostmortemError, match="held already"):
        pm.validate_reschedule(p, later, policy(), NOW)


def test_someone_off_the_roster_changes_nothing() -> None:
    with pytest.raises(PostmortemError, match="by: 'mallory' is not on the roster"):
        pm.validate_meeting(_progress(), RecordMeeting(by="mallory"), policy())


# ---- stages and completion ---------------------------------------------------------------


def test_stages_from_draft_to_complete() -> None:
    p = _progress(document_path=None)
    assert pm.stage(p) == Stage.DRAFT
    p.document_path = "pm.md"
    assert pm.stage(p) == Stage.REVIEW_SCHEDULED
    _held(p, lessons=False)
    assert pm.stage(p) == Stage.MEETING_HELD
    _add(p)
    _add(p, owner="carol")
    assert pm.stage(p) == Stage.ACTION_ITEMS
    assert pm.status_line(p) == "Action items tracked · 2 open of 2"
    assert pm.missing_for_completion(p) == [
        "lessons learned: 'what went well' is empty",
        "lessons learned: 'areas for improvement' is empty",
        "action item #1 is open",
        "action item #2 is open",
    ]
    with pytest.raises(PostmortemError, match="cannot complete: lessons learned"):
        pm.validate_complete(p, CompletePostmortem(by="erin"), policy())
    _held(p)  # the notes amended: held stays as it was
    for number, owner in ((1, "dave"), (2, "carol")):
        pm.close_item(p, CloseActionItem(by=owner, number=number, evidence="done"), NOW)
        assert not pm.completes_by_itself(p)
        pm.verify_item(p, VerifyActionItem(by="frank", number=number), NOW)
    assert pm.completes_by_itself(p) and pm.missing_for_completion(p) == []
    pm.complete(p, "frank", NOW)
    assert pm.stage(p) == Stage.COMPLETE
    with pytest.raises(PostmortemError, match="complete; nothing can change"):
        pm.validate_add(
            p,
            AddActionItem(
                by="erin", title="x", owner="dave", due=date(2026, 12, 10), kind="training"
            ),
            policy(),
            NOW,
        )


def test_without_action_items_it_is_completed_by_hand() -> None:
    p = _progress()
    _held(p)
    assert not pm.completes_by_itself(p)
    pm.validate_complete(p, CompletePostmortem(by="erin"), policy())


def test_the_meeting_notes_are_amended_field_by_field() -> None:
    p = _progress()
    pm.record_meeting(p, RecordMeeting(by="erin", timeline_review=" Ack in 2m "), NOW)
    later = NOW + timedelta(hours=1)
    pm.record_meeting(p, RecordMeeting(by="frank", what_went_well="Fast ack"), later)
    assert (p.held_at, p.held_by) == (NOW, "erin")
    assert p.meeting.timeline_review == "Ack in 2m" and p.meeting.what_went_well == "Fast ack"


# ---- the schedule, whatever the dates ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    dues=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=4),
    closes=st.lists(st.integers(min_value=1, max_value=60 * 24), min_size=4, max_size=4),
)
def test_following_the_wakeups_sends_each_notice_once_and_on_time(
    dues: list[int], closes: list[int]
) -> None:
    """Jumping from wakeup to wakeup (as the workflow does) sends at most one reminder per
    item, before it is due; then overdue notices exactly at the due time and weekly after;
    nothing once the item is closed."""
    p = _progress()
    today = pm.local_today(NOW, HOURS)
    for i, days in enumerate(dues):
        _add(p, owner="dave", due=today + timedelta(days=days))
        p.items[i].created_at = NOW
    close_at = {i + 1: NOW + timedelta(hours=closes[i]) for i in range(len(dues))}
    sent: list[pm.Notice] = []
    now = NOW
    for _ in range(500):
        wake = pm.next_wakeup(p, HOURS)
        closing = [
            (at, n) for n, at in close_at.items() if p.items[n - 1].status == ItemStatus.OPEN
        ]
        if wake is None and not closing:
            break
        first_close = min(closing, default=None)
        if first_close is not None and (wake is None or first_close[0] <= wake):
            now = max(now, first_close[0])
            pm.close_item(p, CloseActionItem(by="dave", number=first_close[1], evidence="x"), now)
            continue
        assert wake is not None
        now = max(now, wake)
        for notice in pm.due_notices(p.items, HOURS, now):
            sent.append(notice)
            pm.record_notice(p.items[notice.number - 1], notice)
    for item in p.items:
        mine = [n for n in sent if n.number == item.number]
        due = pm.due_at(item.due, HOURS)
        reminders = [n for n in mine if n.event == "reminder"]
        assert len(reminders) <= 1 and all(n.at < due for n in reminders)
        overdue = [n for n in mine if n.event == "overdue"]
        assert [n.count for n in overdue] == list(range(1, len(overdue) + 1))
        for n in overdue:
            assert n.at == due + pm.FOLLOW_UP_EVERY * (n.count - 1)
        assert item.closed_at is not None
        assert all(n.at <= item.closed_at for n in mine)


# ---- messages ----------------------------------------------------------------------------


def _follow_up_models() -> list[type[FollowUpMessage]]:
    found, todo = [], list(FollowUpMessage.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "kind" in cls.__dict__:
            found.append(cls)
    return found


def test_every_follow_up_kind_has_one_model_and_renders_one_line_subjects() -> None:
    models = _follow_up_models()
    assert sorted(cls.kind for cls in models) == sorted(FollowUpKind)
    fields: dict[str, object] = {
        "by": "erin",
        "number": 2,
        "title": "Pool runbook",
        "owner": "carol",
        "due": date(2026, 12, 10),
        "item_kind": "runbook",
        "notice": 2,
        "evidence": "https://x.example",
        "review_at": NOW,
        "old_review_at": NOW - timedelta(hours=1),
        "items": 2,
    }
    state = incident("P1")
    for cls in models:
        wanted = {k: v for k, v in fields.items() if k in cls.model_fields}
        rendered = render_follow_up(cls.model_validate(wanted), state, policy(), NOW)
        assert rendered.subject.startswith("[P1] INC-2026-11-26-001 ")
        assert "\n" not in rendered.subject
        assert rendered.text.startswith("[P1] INC-2026-11-26-001 api: API p99 > 5s\n")


def test_an_overdue_report_says_whose_item_and_what_to_run() -> None:
    params = ItemOverdueMessage(
        number=2,
        title="Pool runbook",
        owner="carol",
        due=date(2026, 12, 10),
        item_kind="runbook",
        notice=1,
    )
    text = render_follow_up(params, incident("P1"), policy(), NOW).text
    assert text == (
        "[P1] INC-2026-11-26-001 api: API p99 > 5s\n"
        "Your post-mortem action item is overdue.\n"
        "Action item #2: Pool runbook\n"
        "Kind: Runbook update\n"
        "Owner: Carol Christensen\n"
        "Due: Thu 2026-12-10 (end of day, America/New_York)\n"
        "Your team lead has been told.\n"
        'When it is done: firewatch action close INC-2026-11-26-001 2 --evidence "LINK OR TEXT"'
        " --by carol\n"
        "Need longer: firewatch action edit INC-2026-11-26-001 2 --due YYYY-MM-DD --by carol\n"
    )


def test_the_invitations_go_to_everyone_the_document_lists() -> None:
    """Whoever acknowledged, held or resolved it is invited, as the draft lists them."""
    state = incident("P1").model_copy(
        update={"responders": [], "acknowledged_by": "carol", "resolved_by": "dave"}
    )
    invited = attendees(state, policy())
    assert invited == ["carol", "dave", "erin", "frank"]
    listed = postmortem_attendees(state, policy())
    assert [label.split(" (")[0] for label in listed] == [
        "Carol Christensen",
        "Dave Dahl",
        "Erin Eriksen",
        "Frank Foss",
    ]
