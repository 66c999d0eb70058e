"""Shared by the benchmarks: timed concurrent calls, percentiles, the machine they ran on."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.statuses["ok"]

    @property
    def errors(self) -> int:
        return self.count - self.ok

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def pct(self, q: float) -> float:
        """The q-quantile latency in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run_many(
    name: str, count: int, concurrency: int, one: Callable[[int], Awaitable[str]]
) -> Result:
    """``count`` calls of ``one(i)`` with at most ``concurrency`` in flight.

    ``one`` returns "ok" or a failure label; an exception counts as its type's name.
    """
    result = Result(name, count, 0.0, [])
    next_index = iter(range(count))

    async def lane() -> None:
        for i in next_index:
            started = time.perf_counter()
            try:
                outcome = await one(i)
            except Exception as err:
                outcome = type(err).__name__
            result.latencies.append(time.perf_counter() - started)
            result.statuses[outcome] += 1

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result


def machine_info() -> str:
    import temporalio

    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return (
        f"nproc={len(os.sched_getaffinity(0))} (cpu_count={os.cpu_count()})"
        f"  mem={mem_kib / 1024 / 1024:.1f} GiB  {platform.platform()}"
        f"  python={platform.python_version()}  temporalio={temporalio.__version__}"
    )


def project_root() -> Path:
    # Not at import time: the workflow sandbox re-imports benchmark modules and forbids resolve().
    return Path(__file__).resolve().parent.parent


def child_env(target: str, namespace: str, data: Path, queue: str) -> dict[str, str]:
    """This environment minus any Temporal/Firewatch settings, pointed at the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FIREWATCH_"))}
    env.update(
        TEMPORAL_ADDRESS=target,
        TEMPORAL_NAMESPACE=namespace,
        FIREWATCH_DATA_DIR=str(data),
        FIREWATCH_TASK_QUEUE=queue,
        PYTHONUNBUFFERED="1",
    )
    return env


async def start_worker_process(
    client: Any, data: Path, queue: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python worker.py`` as under ``make up``; returns once it polls ``queue``.

    ``extra_env`` adds settings (``FIREWATCH_POLICY``, channel credentials, ...)."""
    target = client.service_client.config.target_host
    env = {**child_env(target, client.namespace, data, queue), **(extra_env or {})}
    return await start_polling_process(
        client, [sys.executable, str(project_root() / "worker.py")], env, queue, log
    )


async def start_polling_process(
    client: Any, argv: list[str], env: dict[str, str], queue: str, log: Path
) -> subprocess.Popen[bytes]:
    """Any worker process (``argv``, run from the project root); returns once it polls
    ``queue`` for workflow tasks (found by its pid in the pollers' identities)."""
    from starter.temporal_setup import workflow_pollers

    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            argv, cwd=project_root(), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while not any(
        p.identity.startswith(f"{proc.pid}@") for p in await workflow_pollers(client, queue)
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"the worker did not start ({log}):\n{tail}")
        await asyncio.sleep(0.2)
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def start_dev_server() -> Any:
    """A fresh in-memory dev server from this venv, with Firewatch's search attributes."""
    import shutil

    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from starter.temporal_setup import ONE_PARTITION_FLAGS
    from workflows.search_attributes import ALL_KEYS

    temporal = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal,
        search_attributes=list(ALL_KEYS),
        dev_server_log_level="error",
        dev_server_extra_args=ONE_PARTITION_FLAGS,  # as `make up` runs it
    )
