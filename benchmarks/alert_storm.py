"""Alert storm: the HTTP ingest path against bare Temporal signal-with-start, in one run.

    python benchmarks/alert_storm.py [--alerts 10000] [--keys 100] [--concurrency 50]
    python benchmarks/alert_storm.py --config ab [--rounds 3] [--db-incidents 300]

Starts its own dev server (``WorkflowEnvironment.start_local`` with Firewatch's search
attributes), then on this machine:

(a) baseline: ``--alerts`` signal-with-start calls (``USE_EXISTING``) of a trivial
    workflow defined here, spread over ``--keys`` workflow ids, at ``--concurrency``,
    its worker in this process;
(b) Firewatch: ``--alerts`` PagerDuty events POSTed to ``/v2/enqueue`` over the same
    number of dedup keys and concurrency, the API served by uvicorn in a subprocess,
    the real worker (``worker.build_worker``) in this process. The load generator is a
    minimal keep-alive HTTP/1.1 client (``--client httpx`` uses httpx.AsyncClient,
    which saturates first at this concurrency); ``--ingest-only`` adds a run before
    the worker starts, to tell the API's cost from the worker's.

It reports accepted alerts/s, p50/p99 latency and errors for both, checks that exactly
``--keys`` incidents were created (one run each) and that every accepted alert was
recorded by its incident, and compares the rates (target: ≥ 0.8× the bare rate).

``--config ab`` (scale-out, issue 15): each round runs (a), then Firewatch as processes in
the two configurations of ``benchmarks/configs.py``, A (one ``python worker.py`` and one
API on SQLite) and B (two workers and two APIs on one throw-away PostgreSQL, the POSTs
alternating between the APIs), in an order swapped every other round, each with fresh
processes, task queue and database. It prints each round's table, the per-round rates,
A/bare, B/bare and B/A with their medians, and the store's database time per incident on
SQLite and PostgreSQL (``--db-incidents``, measured as ``scale_out.py`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import workflow

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.configs import (
    AB,
    CONFIGS,
    Config,
    ab_environment,
    deployment,
    in_turn,
    print_ab_summary,
    print_store_cost,
)
from benchmarks.measure import (
    Result,
    child_env,
    machine_info,
    project_root,
    run_many,
    start_dev_server,
    start_worker_process,
    stop_process,
)

TARGET_RATIO = 0.8


# ---- (a) the bare baseline ---------------------------------------------------------------


@workflow.defn
class StormBare:
    """Counts the signals it gets; ends only when the benchmark terminates it."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.signal
    def alert(self, _payload: str) -> None:
        self.count += 1

    @workflow.query
    def received(self) -> int:
        return self.count

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


# ---- measuring ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the runs ----------------------------------------------------------------------------


async def bench_bare(client: Any, alerts: int, keys: int, concurrency: int) -> Result:
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.worker import Worker

    # The sandbox re-imports a workflow's module by name: use ``benchmarks.alert_storm``.
    from benchmarks import alert_storm as module

    queue = f"storm-bare-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:6]

    async def one(i: int, prefix: str = "bare") -> str:
        await client.start_workflow(
            module.StormBare.run,
            id=f"storm-{prefix}-{tag}-{i % keys}",
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="alert",
            start_signal_args=[f"alert {i}"],
        )
        return "ok"

    from worker import workflow_runner

    # Same workflow runner as Firewatch's worker: the ratio measures Firewatch, not the sandbox.
    async with Worker(
        client, task_queue=queue, workflows=[module.StormBare], workflow_runner=workflow_runner()
    ):
        await run_many("warm-up", min(500, alerts), concurrency, lambda i: one(i, "warm"))
        result = await run_many("bare signal-with-start", alerts, concurrency, one)
    print(f"    {result.ok} accepted in {result.seconds:.1f} s", flush=True)
    await terminate(client, [f"storm-{p}-{tag}-{k}" for p in ("bare", "warm") for k in range(keys)])
    return result


async def terminate(client: Any, workflow_ids: list[str]) -> None:
    """End a run's workflows, so that the next run starts on an idle server.

    Open incidents would otherwise wake on their escalation timers during later rounds.
    """
    from temporalio.service import RPCError

    async def end(workflow_id: str) -> None:
        with contextlib.suppress(RPCError):  # already ended
            await client.get_workflow_handle(workflow_id).terminate("benchmark round over")

    await asyncio.gather(*(end(i) for i in workflow_ids))


class ApiProcess:
    """``uvicorn starter.api.app:app`` in a subprocess, configured through the environment."""

    def __init__(
        self,
        target: str,
        namespace: str,
        data: Path,
        queue: str,
        log: Path,
        app: str = "starter.api.app:app",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=project_root(),
            env=child_env(target, namespace, data, queue),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                try:
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start; see {self.log.name}")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@contextlib.asynccontextmanager
async def firewatch_worker(
    client: Any, where: str, policy: Any, data: Path, queue: str, log: Path
) -> AsyncIterator[None]:
    """The real worker: in this process (default), or ``python worker.py`` as under make up."""
    from worker import build_worker

    if where == "inprocess":
        with ThreadPoolExecutor(max_workers=32) as pool:
            async with build_worker(
                client, policy=policy, data=data, task_queue=queue, executor=pool
            ):
                yield
        return
    proc = await start_worker_process(client, data, queue, log)
    try:
        yield
    finally:
        stop_process(proc)


async def recorded_alerts(client: Any, ids: list[str], expected: int, timeout: float) -> int:
    """Sum of the incidents' alert counts, polled until it reaches ``expected``."""
    from datetime import timedelta

    from temporalio.service import RPCError

    from workflows.incident import IncidentWorkflow

    counts = dict.fromkeys(ids, 0)
    deadline = time.monotonic() + timeout
    while sum(counts.values()) < expected and time.monotonic() < deadline:
        for workflow_id in ids:  # one at a time: the worker is still busy absorbing
            try:
                state = await client.get_workflow_handle(workflow_id).query(
                    IncidentWorkflow.state, rpc_timeout=timedelta(seconds=30)
                )
            except RPCError:
                continue
            counts[workflow_id] = state.alert_count if state is not None else 0
        if sum(counts.values()) < expected:
            await asyncio.sleep(1)
    return sum(counts.values())


@dataclass
class StormCheck:
    incidents: int  # of the measured run's keys
    single_run: bool  # every key of every API run has exactly one workflow run
    recorded: int  # alerts the incidents of every API run counted
    accepted: int  # alerts every API run got a 202 for
    drain_seconds: float


NO_CHECK = StormCheck(0, True, 0, 0, float("nan"))  # the bare run's: nothing to check


class RawConnection:
    """One keep-alive HTTP/1.1 connection: a minimal client for the load generator.

    httpx.AsyncClient tops out near 90 requests/s at concurrency 50 on this machine, even
    against an empty FastAPI app, so it would measure itself rather than the API.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        lengths = {k.lower(): v for k, v in headers.items()}
        await self.reader.readexactly(int(lengths.get("content-length", "0")))
        if lengths.get("connection", "").lower() == "close":
            self.writer.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Sender:
    """POSTs JSON with ``concurrency`` connections, through httpx or the raw client; with
    several APIs, the connections are split evenly and request i goes to API i mod n."""

    def __init__(self, urls: list[str], concurrency: int, kind: str) -> None:
        import httpx

        self.kind = kind
        self.pools: list[asyncio.Queue[RawConnection]] = []
        self.http: list[httpx.AsyncClient] = []
        for n, url in enumerate(urls):
            share = max(1, concurrency // len(urls) + (1 if n < concurrency % len(urls) else 0))
            pool: asyncio.Queue[RawConnection] = asyncio.Queue()
            for _ in range(share):
                pool.put_nowait(RawConnection("127.0.0.1", int(url.rsplit(":", 1)[1])))
            self.pools.append(pool)
            limits = httpx.Limits(max_connections=share, max_keepalive_connections=share)
            self.http.append(httpx.AsyncClient(base_url=url, limits=limits, timeout=60))

    async def post(self, path: str, payload: dict[str, Any], i: int = 0) -> int:
        if self.kind == "httpx":
            return (await self.http[i % len(self.http)].post(path, json=payload)).status_code
        pool = self.pools[i % len(self.pools)]
        connection = await pool.get()
        try:
            return await connection.post_json(path, json.dumps(payload).encode())
        except Exception:
            connection.close()  # reconnect next time
            raise
        finally:
            pool.put_nowait(connection)

    async def close(self) -> None:
        for http in self.http:
            await http.aclose()
        for pool in self.pools:
            while not pool.empty():
                pool.get_nowait().close()


@dataclass
class Target:
    """Where a storm goes: the APIs, the routing key they accept, and ``worker()``, which
    runs the Firewatch worker(s) for the measured run (a no-op where they already run)."""

    urls: list[str]
    routing_key: str
    worker: Callable[[], AbstractAsyncContextManager[None]]
    name: str = "API POST /v2/enqueue"


@contextlib.asynccontextmanager
async def single_api(
    client: Any, args: argparse.Namespace, work: Path, queue: str, app: str
) -> AsyncIterator[Target]:
    """One API subprocess on ``work/data``; the worker as ``--worker`` says, started later."""
    from activities.config import PolicyStore
    from starter.secrets import ensure_secrets

    data = work / "data"
    policy = PolicyStore()
    routing_key = ensure_secrets(data, policy.get()).for_integration("pagerduty")
    assert routing_key is not None, "the default policy has a pagerduty integration"
    target = client.service_client.config.target_host
    api = ApiProcess(target, client.namespace, data, queue, work / "api.log", app)
    try:
        await api.ready()
        yield Target(
            [api.url],
            routing_key.key,
            lambda: firewatch_worker(client, args.worker, policy, data, queue, work / "worker.log"),
        )
    finally:
        api.stop()


@contextlib.asynccontextmanager
async def configured(
    client: Any, config: Config, ab: AB, work: Path, queue: str
) -> AsyncIterator[Target]:
    """``config``'s worker and API processes (``benchmarks.configs.deployment``), all up."""
    async with deployment(client, config, ab.pg, ab.policy, work, queue) as running:
        print(f"    {config.label}: processes up in {running.setup_s:.1f} s", flush=True)
        yield Target(
            running.urls,
            running.pagerduty_key(),
            contextlib.nullcontext,
            f"{config.key}: {len(running.urls)} API{'s' if len(running.urls) > 1 else ''}"
            f" {'PostgreSQL' if config.postgres else 'SQLite'}",
        )


async def bench_api(
    client: Any,
    args: argparse.Namespace,
    work: Path,
    app: str = "starter.api.app:app",
    config: tuple[Config, AB] | None = None,
) -> tuple[Result | None, Result, StormCheck]:
    """The storm through one API (``app``) and the ``--worker``, or through ``config``'s
    processes (its APIs share the load)."""
    async with contextlib.AsyncExitStack() as stack:
        queue = f"storm-fw-{uuid.uuid4().hex[:6]}"
        if config is None:
            target = await stack.enter_async_context(single_api(client, args, work, queue, app))
        else:
            target = await stack.enter_async_context(
                configured(client, config[0], config[1], work, queue)
            )
        return await storm_through(client, args, target)


async def storm_through(
    client: Any, args: argparse.Namespace, target: Target
) -> tuple[Result | None, Result, StormCheck]:
    from domain.ids import incident_workflow_id

    alerts, keys, concurrency = args.alerts, args.keys, args.concurrency
    tag = uuid.uuid4().hex[:6]
    ingest: Result | None = None
    families = ["storm"]
    sender = Sender(target.urls, concurrency, args.client)

    async def one(i: int, family: str) -> str:
        event = {
            "routing_key": target.routing_key,
            "event_action": "trigger",
            "dedup_key": f"{family}-{tag}-{i % keys:03d}",
            "payload": {
                "summary": f"Checkout error rate high (alert {i})",
                "source": f"web-{i % 7}",
                "severity": "critical",
                "custom_details": {"error_rate": 0.07, "sample": i},
            },
        }
        status = await sender.post("/v2/enqueue", event, i)
        return "ok" if status == 202 else f"HTTP {status}"

    try:
        await run_many("warm-up", min(500, alerts), concurrency, lambda i: one(i, "warm"))
        families.append("warm")
        if args.ingest_only:
            # Before any worker polls: what the API itself sustains.
            ingest = await run_many(
                "API, no worker running", alerts, concurrency, lambda i: one(i, "ingest")
            )
            families.append("ingest")
            print(f"    {ingest.ok} accepted in {ingest.seconds:.1f} s (no worker)", flush=True)
        async with target.worker():
            result = await run_many(target.name, alerts, concurrency, lambda i: one(i, "storm"))
            print(f"    {result.ok} accepted in {result.seconds:.1f} s", flush=True)
            # Every accepted alert is in its incident: let the worker absorb them all.
            ids = [
                incident_workflow_id(f"{family}-{tag}-{k:03d}", "pagerduty")
                for family in families
                for k in range(keys)
            ]
            began = time.perf_counter()
            warm = min(500, alerts)
            expected = result.ok + warm + (ingest.ok if ingest else 0)
            recorded = await recorded_alerts(client, ids, expected, timeout=900)
            drained = time.perf_counter() - began
    finally:
        await sender.close()
    await asyncio.sleep(1)  # visibility lags a moment
    prefix = f"incident/pagerduty/storm-{tag}-"
    query = f"WorkflowType = 'IncidentWorkflow' AND WorkflowId STARTS_WITH '{prefix}'"
    incidents = (await client.count_workflows(query)).count
    runs = await asyncio.gather(*(client.count_workflows(f"WorkflowId = '{i}'") for i in ids))
    single = all(r.count == 1 for r in runs)
    await terminate(client, ids)
    return ingest, result, StormCheck(incidents, single, recorded, expected, drained)


async def bench_plain(
    client: Any, args: argparse.Namespace, tmp: Path, n: int
) -> tuple[Result, StormCheck]:
    print(f"(c) API without the fast lane: {n} POST /v2/enqueue", flush=True)
    work = tmp / "plain"
    work.mkdir()
    _, plain, check = await bench_api(client, args, work, "benchmarks.api_without_fast_lane:app")
    return plain, check


def print_table(bare: Result, runs: list[Result]) -> None:
    width = max(26, *(len(r.name) + 2 for r in runs))
    print()
    print(
        f"{'run':<{width}}{'alerts':>8}{'secs':>7}{'accepted/s':>12}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'× bare':>8}"
    )
    for res in runs:
        print(
            f"{res.name:<{width}}{res.count:>8}{res.seconds:>7.1f}{res.rate:>12.1f}"
            f"{res.pct(0.5):>8.1f}{res.pct(0.99):>8.1f}{res.errors:>8}{res.rate / bare.rate:>8.2f}"
        )
    for res in runs:
        if res.errors:
            print(f"  {res.name} errors: {dict(res.statuses - Counter(ok=res.ok))}")


def checked(api: Result, check: StormCheck, keys: int, runs: list[Result], label: str = "") -> bool:
    """Prints what the measured run created and recorded; True when nothing was lost."""
    print(
        f"{label}incidents created by the measured run: {check.incidents} (expected {keys});"
        f" one run per key: {'yes' if check.single_run else 'NO'};"
        f" alerts recorded by incidents: {check.recorded}/{check.accepted} accepted"
        f" (all absorbed {check.drain_seconds:.1f} s after the storm)"
    )
    return (
        check.incidents == keys
        and check.single_run
        and api.errors == 0
        and all(r.errors == 0 for r in runs)
        and check.recorded == check.accepted
    )


def print_report(
    bare: Result, ingest: Result | None, api: Result, check: StormCheck, keys: int
) -> bool:
    runs = [r for r in (bare, ingest, api) if r is not None]
    print_table(bare, runs)
    ratio = api.rate / bare.rate
    ok = checked(api, check, keys, runs)
    print(
        f"targets: exactly {keys} incidents, 0 errors, nothing lost: {'met' if ok else 'NOT met'};"
        f" ≥ {TARGET_RATIO}× bare (with the worker running): "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'} ({ratio:.2f}×)"
    )
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts per measured run")
    parser.add_argument("--keys", type=int, default=100, help="distinct dedup keys")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator: keep-alive HTTP/1.1 over asyncio streams, or httpx.AsyncClient",
    )
    parser.add_argument(
        "--worker",
        choices=["inprocess", "subprocess"],
        default="inprocess",
        help="run the Firewatch worker in this process, or as `python worker.py` (as make up)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bare then Firewatch, this many times: the median ratio resists the machine's noise",
    )
    parser.add_argument(
        "--compare-fast-lane",
        action="store_true",
        help="each round also runs the API without its fast lane (api_without_fast_lane.py)",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="also measure the API before any worker polls (separates API from worker cost)",
    )
    parser.add_argument(
        "--config",
        choices=["one", "ab"],
        default="one",
        help="one: Firewatch as above; ab: each round bare, then A (1 worker + 1 API, SQLite)"
        " and B (2 workers + 2 APIs, PostgreSQL) as processes (benchmarks/configs.py)",
    )
    parser.add_argument(
        "--db-incidents",
        type=int,
        default=300,
        help="with --config ab: incidents of the database cost runs (0: none)",
    )
    args = parser.parse_args()
    if args.config == "ab":
        if args.compare_fast_lane or args.ingest_only:
            parser.error("--config ab runs neither --compare-fast-lane nor --ingest-only")
        return await main_ab(args)

    print(machine_info(), flush=True)
    env = await start_dev_server()
    n, k, c = args.alerts, args.keys, args.concurrency
    ok = True
    ratios: list[float] = []
    plain_ratios: list[float] = []
    try:
        for round_no in range(1, args.rounds + 1):
            with tempfile.TemporaryDirectory(prefix="fw-storm-") as tmp:
                print(
                    f"round {round_no}/{args.rounds}\n"
                    f"(a) bare: {n} signal-with-start over {k} workflow ids, concurrency {c}",
                    flush=True,
                )
                bare = await bench_bare(env.client, n, k, c)
                plain = None
                # With --compare-fast-lane the two API runs swap places every round.
                lane_last = args.compare_fast_lane and round_no % 2 == 0
                if lane_last:
                    plain, plain_check = await bench_plain(env.client, args, Path(tmp), n)
                print(
                    f"(b) API: {n} POST /v2/enqueue over {k} dedup keys, concurrency {c}",
                    flush=True,
                )
                ingest, api, check = await bench_api(env.client, args, Path(tmp))
                if args.compare_fast_lane and not lane_last:
                    plain, plain_check = await bench_plain(env.client, args, Path(tmp), n)
            ok = print_report(bare, ingest, api, check, k) and ok
            ratios.append(api.rate / bare.rate)
            if plain is not None:
                ok = print_report(bare, None, plain, plain_check, k) and ok
                plain_ratios.append(plain.rate / bare.rate)
                print(f"fast lane / no fast lane: {api.rate / plain.rate:.2f}×")
            print(flush=True)
    finally:
        await env.shutdown()
    median = statistics.median(ratios)
    print(
        f"ratio per round: {', '.join(f'{r:.2f}×' for r in ratios)}; median {median:.2f}×"
        f" (target ≥ {TARGET_RATIO}×: {'met' if median >= TARGET_RATIO else 'NOT met'})"
    )
    if plain_ratios:
        gains = [r / p for r, p in zip(ratios, plain_ratios, strict=True)]
        print(
            f"without the fast lane: {', '.join(f'{r:.2f}×' for r in plain_ratios)};"
            f" median {statistics.median(plain_ratios):.2f}× bare."
            f" Fast lane gain per round: {', '.join(f'{g:.2f}×' for g in gains)};"
            f" median {statistics.median(gains):.2f}×"
        )
    return 0 if ok else 1


async def main_ab(args: argparse.Namespace) -> int:
    """Each round: bare, then A and B (their order swapped every other round)."""
    from activities.config import PolicyStore

    n, k, c = args.alerts, args.keys, args.concurrency
    print(machine_info(), flush=True)
    print(
        f"{n} alerts over {k} dedup keys, concurrency {c}; {args.rounds} round(s) of bare"
        f" signal-with-start, {' and '.join(cf.label for cf in CONFIGS)}; the shipped policy",
        flush=True,
    )
    ok = True
    rounds: list[dict[str, tuple[Result, StormCheck]]] = []
    async with ab_environment(PolicyStore().get(), args.db_incidents, args.rounds) as run:
        for round_no in range(1, args.rounds + 1):
            print(
                f"\nround {round_no}/{args.rounds}\n"
                f"(bare) {n} signal-with-start over {k} workflow ids, concurrency {c}",
                flush=True,
            )
            bare = await bench_bare(run.env.client, n, k, c)
            runs: dict[str, tuple[Result, StormCheck]] = {"bare": (bare, NO_CHECK)}
            for config in in_turn(CONFIGS, round_no):
                print(f"({config.key}) {n} POST /v2/enqueue, {config.label}", flush=True)
                where = run.work / f"round-{round_no}-{config.key}"
                _, api, check = await bench_api(
                    run.env.client, args, where, config=(config, run.ab)
                )
                runs[config.key] = (api, check)
            print_table(bare, [runs[key][0] for key in ("bare", "A", "B")])
            for config in CONFIGS:
                api, check = runs[config.key]
                ok = checked(api, check, k, [api], f"{config.key}: ") and ok
            print(f"B/A: {runs['B'][0].rate / runs['A'][0].rate:.2f}×", flush=True)
            rounds.append(runs)
    print_ab_summary(
        {key: [r[key][0].rate for r in rounds] for key in ("bare", "A", "B")}, "accepted alerts/s"
    )
    if run.db_ms:
        print_store_cost(run.db_ms)
    drains = {key: [r[key][1].drain_seconds for r in rounds] for key in ("A", "B")}
    print(
        "all alerts absorbed by their incidents, seconds after the storm: "
        + "; ".join(f"{key} {', '.join(f'{d:.1f}' for d in ds)}" for key, ds in drains.items())
    )
    print(f"every alert accepted, {k} incidents each, nothing lost: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # Skip interpreter finalisation: the Temporal bridge's threads can still call into Python
    # while it tears down ("PyGILState_Release ... finalizing"), after the report is out.
    os._exit(code)
