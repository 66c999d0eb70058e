"""Load: 200 heartbeat pings a second across 50 monitors, all accepted (real API, worker and
dev server on this machine). Pings are sent open-loop on a fixed schedule, as 50 cron jobs
would send them, whatever the answers take; every one must be answered 2xx, and every one
must reach its monitor's workflow.

The pings go out through aiohttp: the test, the API and the worker share one process (and
its GIL), and httpx's client alone costs more CPU per request than the API's handler."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from domain.heartbeats import heartbeat_workflow_id
from tests.api.api_support import ApiEnv, eventually
from tests.heartbeats.conftest import LOAD, bearer, token
from tests.heartbeats.support import beat_state, exists

RATE = 200  # pings a second
PINGS = 400  # two seconds of it


async def test_200_pings_a_second_across_50_monitors_are_all_accepted(beats_env: ApiEnv) -> None:
    headers = {m.name: bearer(token(beats_env, m.name)) for m in LOAD}
    before = {m.name: (await _pings(beats_env, m.name)) for m in LOAD}
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=100)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(beats_env.url, connector=connector, timeout=timeout) as http:
        start = time.monotonic()

        async def ping(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
            name = LOAD[i % len(LOAD)].name
            sent = time.monotonic()
            async with http.post(f"/heartbeats/{name}", headers=headers[name]) as response:
                await response.read()
            latencies.append(time.monotonic() - sent)
            statuses[response.status] += 1

        await asyncio.gather(*(ping(i) for i in range(PINGS)))
        elapsed = time.monotonic() - start
    latencies.sort()
    achieved = PINGS / elapsed
    print(
        f"\n{PINGS} pings across {len(LOAD)} monitors, offered at {RATE}/s: "
        f"{achieved:.0f}/s achieved in {elapsed:.2f} s; answers {dict(statuses)}; latency "
        f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms"
    )
    assert sum(n for code, n in statuses.items() if 200 <= code < 300) == PINGS, statuses
    # Kept up with the offered rate: the last answer came soon after the last ping was sent.
    assert elapsed < PINGS / RATE + 3, f"only {achieved:.0f}/s"

    # Every accepted ping was durably recorded: each monitor's workflow counts all of its own.
    per_monitor = PINGS // len(LOAD)

    async def all_counted() -> bool:
        counts = await asyncio.gather(*(_pings(beats_env, m.name) for m in LOAD))
        return all(c - before[m.name] == per_monitor for m, c in zip(LOAD, counts, strict=True))

    await eventually(all_counted, timeout=30)


async def _pings(env: ApiEnv, name: str) -> int:

    if not await exists(env.client, heartbeat_workflow_id(name)):
        return 0
    return (await beat_state(env.client, name)).pings
