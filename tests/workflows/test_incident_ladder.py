"""The escalation ladder on the seed's exact timings (time-skipping server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.incident import AcknowledgeRequest, ResolveRequest, Status
from domain.policy import Policy
from starter.incidents import ActionRejected, run_update
from storage.documents import Documents
from tests.workflows.helpers import minutes, open_incident, page_offsets, state_of
from workflows.incident import IncidentWorkflow

P1_ROLES = ["primary", "secondary", "team_lead", "engineering_manager"]


async def test_p1_pages_each_level_then_repeats_and_gives_up(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(timedelta(hours=6))
    st = await state_of(handle)

    first_pass = [minutes(0), minutes(15), minutes(45), minutes(90)]
    second_pass = [minutes(150 + m) for m in (0, 15, 45, 90)]
    assert [o for o, _, _ in page_offsets(st)] == first_pass + second_pass
    assert [r for _, r, _ in page_offsets(st)] == P1_ROLES * 2
    kinds = [(e.kind, e.at - st.opened_at) for e in st.timeline if e.kind.startswith("ladder")]
    assert [k for k, _ in kinds] == ["ladder_repeat", "ladder_exhausted"]
    assert kinds[0][1] >= minutes(150) and kinds[1][1] >= minutes(300)

    outbox = Store(tmp_path).notifications(st.incident_id)
    channel = [
        (n.kind, n.scheduled_at - st.opened_at) for n in outbox if n.recipient == "#incidents"
    ]
    assert ("initial_alert", timedelta(0)) in [(k, round_to_minute(t)) for k, t in channel]
    assert ("ladder_repeat", minutes(150)) in channel
    assert ("ladder_exhausted", minutes(300)) in channel
    pages = [n for n in outbox if n.kind == "page"]
    assert len(pages) == 8 and len({n.idempotency_key for n in outbox}) == len(outbox)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
async def test_ack_at_each_level_stops_further_pages(
    level: int,
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    page_at = [minutes(0), minutes(15), minutes(45), minutes(90)]
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(page_at[level] + minutes(1))
    paged = (await state_of(handle)).pages[-1].person
    st = await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
    assert st.status == Status.INVESTIGATING and st.assignee == paged
    await ts_env.sleep(timedelta(hours=6))
    st = await state_of(handle)

    assert [o for o, _, _ in page_offsets(st)] == page_at[: level + 1]
    assert st.acknowledged_at is not None
    assert st.acknowledged_at - st.opened_at >= page_at[level]
    assert not any(e.kind.startswith("ladder") for e in st.timeline)
    pages = [n for n in Store(tmp_path).notifications(st.incident_id) if n.kind == "page"]
    assert len(pages) == level + 1


async def test_p0_informs_management_at_open_and_pages_like_p1(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P0", service="database", summary="DB down")
    await ts_env.sleep(minutes(100))
    st = await state_of(handle)

    assert [o for o, _, _ in page_offsets(st)] == [
        minutes(0),
        minutes(15),
        minutes(45),
        minutes(90),
    ]
    outbox = Store(tmp_path).notifications(st.incident_id)
    informed = {n.recipient: n.scheduled_at - st.opened_at for n in outbox if n.kind == "inform"}
    roster = default_policy.roster
    assert informed == {roster.team_lead: timedelta(0), roster.engineering_manager: timedelta(0)}
    notices = [n.scheduled_at - st.opened_at for n in outbox if n.kind == "stakeholder_notice"]
    assert notices == [minutes(30)]


async def test_p2_ladder_has_its_own_timings_and_does_not_repeat(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P2")
    await ts_env.sleep(timedelta(hours=20))
    st = await state_of(handle)

    assert page_offsets(st)[0][:2] == (timedelta(0), "primary")
    assert [(o, r) for o, r, _ in page_offsets(st)] == [
        (timedelta(0), "primary"),
        (timedelta(hours=1), "secondary"),
        (timedelta(hours=5), "team_lead"),
    ]
    exhausted = [e.at - st.opened_at for e in st.timeline if e.kind == "ladder_exhausted"]
    assert len(exhausted) == 1 and exhausted[0] >= timedelta(hours=13)
    outbox = Store(tmp_path).notifications(st.incident_id)
    assert not [n for n in outbox if n.kind in ("stakeholder_notice", "inform")]


async def test_p3_pages_nobody(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P3", summary="Typo on the pricing page")
    await ts_env.sleep(timedelta(hours=12))
    st = await state_of(handle)
    assert st.pages == []
    kinds = {n.kind for n in Store(tmp_path).notifications(st.incident_id)}
    assert "page" not in kinds and "initial_alert" in kinds
    assert st.incident_id is not None
    ticket = Documents(Store(tmp_path).database).get("ticket", st.incident_id)
    assert ticket is not None and "Typo on the pricing page" in ticket.markdown
    assert (tmp_path / "tickets" / f"{st.incident_id}.md").read_text() == ticket.markdown


async def test_invalid_transitions_are_rejected_with_a_reason(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P2")
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by="mallory"))
    assert "'mallory' is not on the roster" in str(unknown.value.cause)

    resolve = ResolveRequest(by="alice", root_cause="bad deploy", fix="rolled back")
    st = await handle.execute_update(IncidentWorkflow.resolve, resolve)
    assert st.status == Status.RESOLVED
    # The workflow closes in the same task as the resolve; a late ack is refused either by
    # the validator (still closing) or because the incident has closed.
    with pytest.raises(ActionRejected) as late:
        await run_update(handle, IncidentWorkflow.acknowledge, AcknowledgeRequest(by="alice"))
    assert str(late.value) in (
        f"{st.incident_id} is already resolved",
        "the incident is already resolved and closed",
    )
    final = await handle.result()
    assert final.status == Status.RESOLVED and final.acknowledged_at is None
    assert [e.kind for e in final.timeline].count("status") == 1


def round_to_minute(delta: timedelta) -> timedelta:
    return timedelta(minutes=round(delta.total_seconds() / 60))
