"""Shared by the benchmarks: timed concurrent calls, percentiles, the machine they ran on."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path


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
