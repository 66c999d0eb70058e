"""A worker process that runs one mitigation, for the tests that SIGKILL it mid-run.

    python -m tests.runbooks.worker_stand_in <data dir> '<RunMitigation JSON>'

It prints the result as JSON, if it lives that long.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from activities.runbooks import RunbookActivities, RunMitigation
from activities.settings import RunbookSettings
from storage.store import Store


async def main(data_dir: str, payload: str) -> None:
    acts = RunbookActivities(Store(Path(data_dir)), RunbookSettings(runbook_commands=True))
    result = await acts.mitigate(RunMitigation.model_validate_json(payload))
    print(result.model_dump_json(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
