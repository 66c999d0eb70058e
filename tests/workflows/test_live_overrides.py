"""Who is paged is decided when the page is due: an override made mid-ladder counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import rotation
from domain.policy import Override, Policy, Role
from domain.schedule import ScheduledOverride, check_override
from storage.schedules import Schedules
from tests.workflows.helpers import minutes, open_incident, state_of


async def test_an_override_added_mid_ladder_moves_the_next_page(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    handle = await open_incident(ts_env.client, queue, "P1")
    await ts_env.sleep(minutes(5))  # the primary has been paged; the secondary is due at +15m
    st = await state_of(handle)
    assert [p.role for p in st.pages] == [Role.PRIMARY]
    rota_secondary = rotation.holder_name(default_policy.roster, Role.SECONDARY, st.opened_at)
    cover = next(p.name for p in default_policy.roster.people if p.name != rota_secondary)

    # The worker's own database: what `firewatch override add` writes through the API.
    now = await ts_env.get_current_time()
    wanted = Override(role=Role.SECONDARY, person=cover, start=now, end=now + timedelta(hours=2))

    def check(existing: list[ScheduledOverride]) -> list[Override]:
        return [check_override(default_policy.roster, wanted, now, existing)]

    Schedules(Store(tmp_path).database).add(check, actor="erin", now=now)

    await ts_env.sleep(minutes(20))
    st = await state_of(handle)
    assert [(p.role, p.person) for p in st.pages][:2] == [
        (Role.PRIMARY, rotation.holder_name(default_policy.roster, Role.PRIMARY, st.opened_at)),
        (Role.SECONDARY, cover),
    ]
    pages = [n for n in Store(tmp_path).notifications(st.incident_id) if n.kind == "page"]
    assert cover in {n.recipient for n in pages}
    assert rota_secondary not in {n.recipient for n in pages}
