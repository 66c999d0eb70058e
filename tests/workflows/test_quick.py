from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.conftest import running_worker
from tests.workflows.helpers import minutes, open_incident, page_offsets, state_of


async def test_p1_ladder(ts_env: WorkflowEnvironment, default_policy, tmp_path: Path, executor) -> None:
    async with running_worker(ts_env.client, default_policy, tmp_path, executor) as (_, queue):
        handle = await open_incident(ts_env.client, queue, "P1")
        await ts_env.sleep(timedelta(hours=6))
        st = await state_of(handle)
        print(page_offsets(st))
        for e in st.timeline:
            print(e.at - st.opened_at, e.kind, e.text)
        assert [o for o, _, _ in page_offsets(st)][:4] == [minutes(0), minutes(15), minutes(45), minutes(90)]
