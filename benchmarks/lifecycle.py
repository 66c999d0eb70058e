"""Incident lifecycle throughput against bare Temporal, and worker memory with many open incidents.

    python benchmarks/lifecycle.py [--incidents N] [--open 10000] [--concurrency 50]
    python benchmarks/lifecycle.py --config ab [--incidents 500] [--rounds 3] [--no-diagnostics]

One run starts its own dev server (``WorkflowEnvironment.start_local`` with Firewatch's
search attributes) and measures, all on this machine:

(a) baseline: a trivial workflow defined here (start, one activity, wait for a signal,
    complete), N of them at the given concurrency, worker in this process;
(b) Firewatch: N incidents opened (``starter.incidents.trigger``), acknowledged and
    resolved (the workflow's ``acknowledge`` and ``resolve`` updates) until the workflow
    completes, P2 (no post-mortem child) and P1 (post-mortem child started), with the
    real worker from ``worker.build_worker`` in this process, like the baseline's;
(c) the resident memory (VmRSS) of one ``python worker.py`` process holding ``--open``
    P2 incidents, all asleep on their one-hour ladder timer.

``--config ab`` (scale-out, issue 15): each round runs (a), then (b) with the worker as
processes in the two configurations of ``benchmarks/configs.py``, A (one ``python
worker.py`` on SQLite) and B (two worker processes on one throw-away PostgreSQL), in an
order swapped every other round, each run with fresh processes, task queue and database,
and the shipped policy written to the file they load. It prints each round's table, the
per-round rates, A/bare, B/bare and B/A with their medians per severity, and the store's
database time per incident on SQLite and PostgreSQL (``--db-incidents``, measured as
``scale_out.py`` does), also as a share of the wall time per lifecycle. No (c).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.client import Client

if TYPE_CHECKING:
    from activities.config import PolicyStore

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.configs import (
    AB,
    WORKER_CONFIGS,
    Config,
    ab_environment,
    deployment,
    in_turn,
    print_ab_summary,
    print_store_cost,
)
from benchmarks.measure import (
    Result,
    machine_info,
    run_many,
    start_dev_server,
    start_worker_process,
    stop_process,
)

# ---- (a) the bare baseline ---------------------------------------------------------------


@activity.defn
def bare_step(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class BareLifecycle:
    def __init__(self) -> None:
        self._finished = False

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            bare_step, name, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self._finished)
        return greeting


# ---- measuring ---------------------------------------------------------------------------


def checked(result: Result) -> Result:
    """A lifecycle benchmark only counts when every call succeeded."""
    if result.errors:
        raise RuntimeError(f"{result.name}: {result.errors} failed: {dict(result.statuses)}")
    return result


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in KiB, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def outbox_count(db: Path, kind: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)
            ).fetchone()
        except sqlite3.OperationalError:  # the worker has not created the table yet
            return 0
    return int(count)


def log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---- the runs ----------------------------------------------------------------------------


async def bench_baseline(
    client: Client, count: int, concurrency: int, bare: tuple[Any, Any]
) -> Result:
    from temporalio.worker import Worker

    from worker import workflow_runner

    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    wf, step = bare

    async def one(i: int) -> str:
        handle = await client.start_workflow(
            wf.run, f"n{i}", id=f"bare-{queue}-{i}", task_queue=queue
        )
        await handle.signal(wf.finish)
        await handle.result()
        return "ok"

    with ThreadPoolExecutor(max_workers=32) as pool:
        # Same runner as Firewatch's worker: the ratio measures Firewatch, not the sandbox.
        async with Worker(
            client,
            task_queue=queue,
            workflows=[wf],
            activities=[step],
            activity_executor=pool,
            workflow_runner=workflow_runner(),
        ):
            await run_many("warm-up", min(50, count), concurrency, lambda i: one(count + i))
            result = checked(await run_many("bare Temporal lifecycle", count, concurrency, one))
    await print_history_shape(client, f"bare-{queue}-0", "bare")
    return result


async def bench_firewatch(
    client: Client,
    count: int,
    concurrency: int,
    severity: str,
    data: Path,
    config: tuple[Config, AB] | None = None,
) -> Result:
    """``count`` lifecycles; the worker in this process on ``data``, or ``config``'s worker
    processes (``benchmarks.configs.deployment``, data dirs under ``data``)."""
    from domain.ids import postmortem_workflow_id
    from domain.incident import AcknowledgeRequest, Alert, ResolveRequest
    from domain.policy import Severity
    from starter.incidents import run_update, trigger
    from worker import build_worker
    from workflows.incident import IncidentWorkflow

    queue = f"bench-fw-{severity}-{uuid.uuid4().hex[:6]}"
    run_tag = uuid.uuid4().hex[:6]
    sample: list[str] = []  # the incidents' workflow ids, and their post-mortems'

    async def one(i: int) -> str:
        alert = Alert(
            source="cli",
            dedup_key=f"bench-{run_tag}-{severity}-{i}",
            summary=f"benchmark incident {i}",
            service="api",
            severity=Severity(severity),
        )
        st = await trigger(client, alert, task_queue=queue)
        handle = client.get_workflow_handle(st.workflow_id)
        sample.append(st.workflow_id)
        if st.incident_id:
            sample.append(postmortem_workflow_id(st.incident_id))
        by = st.assignee or "alice"  # the paged primary acknowledges
        # Through run_update, as the API, CLI and Slack send people's actions.
        await run_update(handle, IncidentWorkflow.acknowledge, AcknowledgeRequest(by=by))
        await run_update(
            handle,
            IncidentWorkflow.resolve,
            ResolveRequest(by=by, root_cause="benchmark", fix="none needed"),
        )
        await handle.result()
        return "ok"

    label = f"Firewatch {severity} open→ack→resolve"
    async with contextlib.AsyncExitStack() as stack:
        if config is None:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=32))
            await stack.enter_async_context(
                build_worker(
                    client, policy=bench_policy(), data=data, task_queue=queue, executor=pool
                )
            )
        else:
            running = await stack.enter_async_context(
                deployment(client, config[0], config[1].pg, config[1].policy, data, queue)
            )
            print(f"    {config[0].label}: up in {running.setup_s:.1f} s", flush=True)
            # Ended with the deployment: the P1 post-mortems would count up from the same
            # INC ids in the next fresh database.
            running.workflow_ids = sample
            label = f"{config[0].key}: {label}"
        await run_many("warm-up", min(50, count), concurrency, lambda i: one(count + i))
        result = checked(await run_many(label, count, concurrency, one))
        workflow_id = next(w for w in reversed(sample) if w.startswith("incident/"))
        await print_history_shape(client, workflow_id, label.removesuffix(" open→ack→resolve"))
    return result


DIAGNOSTICS = True  # --no-diagnostics: the shipped policy without runbook checks at opening


def bench_policy() -> PolicyStore:
    """The shipped policy (its runbooks' checks run when a P0-P2 opens), or without them."""
    from activities.config import PolicyStore, default_policy

    policy = default_policy()
    if not DIAGNOSTICS:
        severities = {
            sev: sp.model_copy(update={"diagnostics_at_open": False})
            for sev, sp in policy.severities.items()
        }
        policy = policy.model_copy(update={"severities": severities})
    return PolicyStore(policy=policy)


async def print_history_shape(client: Client, workflow_id: str, label: str) -> None:
    """Events and workflow tasks of one lifecycle: what each incident costs Temporal."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    tasks = sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events
    )
    print(
        f"    {label}: {len(history.events)} history events, {tasks} workflow tasks per lifecycle"
    )


async def bench_open_rss(
    client: Client, count: int, concurrency: int, work: Path
) -> dict[str, float]:
    from domain.incident import Alert
    from domain.policy import Severity
    from starter.incidents import trigger

    queue = f"bench-rss-{uuid.uuid4().hex[:6]}"
    data = work / "rss-data"
    log = work / "rss-worker.log"
    proc = await start_worker_process(client, data, queue, log)
    try:
        idle = vm_status(proc.pid)["VmRSS"]

        run_tag = uuid.uuid4().hex[:6]

        async def one(i: int) -> str:
            alert = Alert(
                source="cli",
                dedup_key=f"rss-{run_tag}-{i}",
                summary=f"open incident {i}",
                service="api",
                severity=Severity.P2,
            )
            # Open and wait for the id: the load follows what the worker absorbs. A burst of
            # bare signal-with-starts queues more work than one worker finishes within the
            # activity and workflow-task timeouts, and the retries then slow everything down.
            await trigger(client, alert, task_queue=queue)
            return "ok"

        started = checked(await run_many("open", count, concurrency, one))
        # The level-1 page is the last step at opening; after it the incident sleeps.
        db = data / "firewatch.db"
        began = time.perf_counter()
        deadline = time.monotonic() + 600
        while outbox_count(db, "page") < count:
            if proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {outbox_count(db, 'page')} of {count} incidents paged:\n{log_tail(log)}"
                )
            await asyncio.sleep(0.5)
        settle = time.perf_counter() - began
        # Let the last workflow tasks (publish, sleep) finish, then sample a few times.
        samples = []
        for _ in range(6):
            await asyncio.sleep(0.5)
            samples.append(vm_status(proc.pid))
        open_now = 0
        async for _ in client.list_workflows(
            f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
        ):
            open_now += 1
        return {
            "idle_mib": idle / 1024,
            "rss_mib": samples[-1]["VmRSS"] / 1024,
            "hwm_mib": samples[-1]["VmHWM"] / 1024,
            "open": open_now,
            "start_rate": started.rate,
            "all_paged_s": started.seconds + settle,
        }
    finally:
        stop_process(proc)


def print_report(
    base: Result | None, runs: list[Result], rss: dict[str, float] | None, open_target: int
) -> None:
    print()
    if base is not None:
        print(
            f"{'run':<38}{'count':>6}{'secs':>7}{'per s':>8}{'p50 ms':>8}{'p99 ms':>8}{'× base':>8}"
        )
        for res in (base, *runs):
            print(
                f"{res.name:<38}{res.count:>6}{res.seconds:>7.1f}{res.rate:>8.1f}"
                f"{res.pct(0.5):>8.0f}{res.pct(0.99):>8.0f}{res.rate / base.rate:>8.2f}"
            )
    if rss is not None:
        per = (rss["rss_mib"] - rss["idle_mib"]) * 1024 / max(1, rss["open"])
        print(
            f"worker RSS, {rss['open']:.0f} open incidents asleep: {rss['rss_mib']:.0f} MiB"
            f" (peak {rss['hwm_mib']:.0f}, idle worker {rss['idle_mib']:.0f};"
            f" {per:.0f} KiB per incident); opened (with id) at {rss['start_rate']:.1f}/s,"
            f" all {open_target} paged after {rss['all_paged_s']:.0f} s"
        )
    verdicts = []
    if base is not None and runs:
        ratio = runs[0].rate / base.rate
        verdicts.append(
            f"P2 lifecycle ≥ 0.5× baseline: {'met' if ratio >= 0.5 else 'NOT met'} ({ratio:.2f}×)"
        )
    if rss is not None:
        ok = rss["rss_mib"] < 1024
        verdicts.append(
            f"RSS < 1 GiB with {open_target} open: {'met' if ok else 'NOT met'}"
            f" ({rss['rss_mib']:.0f} MiB)"
        )
    print("targets: " + "; ".join(verdicts))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=500, help="lifecycles per measured run")
    parser.add_argument("--open", type=int, default=10_000, help="open incidents for the RSS run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--skip-p1", action="store_true", help="do not measure the P1 lifecycle")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bare then Firewatch, this many times: the median ratio resists the machine's noise",
    )
    parser.add_argument("--skip-lifecycles", action="store_true", help="only (c), the RSS run")
    parser.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="the shipped policy without runbook checks at opening (the paging core alone)",
    )
    parser.add_argument(
        "--config",
        choices=["one", "ab"],
        default="one",
        help="one: Firewatch as above; ab: each round bare, then A (1 worker process, SQLite)"
        " and B (2 worker processes, PostgreSQL; benchmarks/configs.py), no RSS run",
    )
    parser.add_argument(
        "--db-incidents",
        type=int,
        default=300,
        help="with --config ab: incidents of the database cost runs (0: none)",
    )
    args = parser.parse_args()
    global DIAGNOSTICS
    DIAGNOSTICS = not args.no_diagnostics
    if args.config == "ab":
        if args.skip_lifecycles:
            parser.error("--config ab measures lifecycles: drop --skip-lifecycles")
        return await main_ab(args)

    # The sandbox re-imports a workflow's module by name: use this file as
    # ``benchmarks.lifecycle`` rather than ``__main__``.
    from benchmarks import lifecycle as bench_module

    bare = (bench_module.BareLifecycle, bench_module.bare_step)
    print(machine_info(), flush=True)
    env = await start_dev_server()
    n, c = args.incidents, args.concurrency
    rounds: list[tuple[Result, list[Result]]] = []
    rss: dict[str, float] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="fw-bench-") as tmp:
            work = Path(tmp)
            for round_no in range(1, 0 if args.skip_lifecycles else args.rounds + 1):
                print(
                    f"round {round_no}/{args.rounds}\n"
                    f"(a) baseline: {n} bare lifecycles, concurrency {c}, worker in-process",
                    flush=True,
                )
                base = await bench_baseline(env.client, n, c, bare)
                print(
                    f"(b) Firewatch: {n} P2 lifecycles, concurrency {c}, worker in-process",
                    flush=True,
                )
                # One data dir per severity across rounds: INC numbers (and with them the
                # post-mortem workflow ids) keep counting up.
                runs = [await bench_firewatch(env.client, n, c, "P2", work / "p2")]
                if not args.skip_p1:
                    print(f"    and {n} P1 lifecycles (post-mortem child started)", flush=True)
                    runs.append(await bench_firewatch(env.client, n, c, "P1", work / "p1"))
                print_report(base, runs, None, args.open)
                rounds.append((base, runs))
            if args.open > 0:
                print(
                    f"(c) RSS: `python worker.py` subprocess, {args.open} open P2 incidents",
                    flush=True,
                )
                rss = await bench_open_rss(env.client, args.open, c, work)
    finally:
        await env.shutdown()
    if rss is not None:
        print_report(None, [], rss, args.open)
    if rounds:
        for i, label in enumerate(("P2", "P1")[: len(rounds[0][1])]):
            ratios = [r[i].rate / b.rate for b, r in rounds]
            print(
                f"{label} ratio per round: {', '.join(f'{x:.2f}×' for x in ratios)};"
                f" median {statistics.median(ratios):.2f}×"
                + (
                    f" (target ≥ 0.5×: {'met' if statistics.median(ratios) >= 0.5 else 'NOT met'})"
                    if label == "P2"
                    else ""
                )
            )
    return 0


async def main_ab(args: argparse.Namespace) -> int:
    """Each round: bare, then A and B (their order swapped every other round)."""
    from benchmarks import lifecycle as bench_module

    bare = (bench_module.BareLifecycle, bench_module.bare_step)
    n, c = args.incidents, args.concurrency
    severities = ["P2"] if args.skip_p1 else ["P2", "P1"]
    print(machine_info(), flush=True)
    print(
        f"{n} lifecycles per run, concurrency {c}; {args.rounds} round(s) of bare, then"
        f" {' and '.join(cf.label for cf in WORKER_CONFIGS)}, {' and '.join(severities)};"
        f" the shipped policy{' without runbook checks' if args.no_diagnostics else ''}"
        + (f"; no RSS run (--open {args.open} is for --config one)" if args.open else ""),
        flush=True,
    )
    rounds: list[dict[str, Result]] = []
    async with ab_environment(bench_policy().get(), args.db_incidents, args.rounds) as run:
        for round_no in range(1, args.rounds + 1):
            print(
                f"\nround {round_no}/{args.rounds}\n"
                f"(bare) {n} bare lifecycles, concurrency {c}, worker in-process",
                flush=True,
            )
            runs = {"bare": await bench_baseline(run.env.client, n, c, bare)}
            for config in in_turn(WORKER_CONFIGS, round_no):
                for severity in severities:
                    print(f"({config.key}) {n} {severity} lifecycles, {config.label}")
                    where = run.work / f"round-{round_no}-{config.key}-{severity}"
                    runs[f"{config.key} {severity}"] = await bench_firewatch(
                        run.env.client, n, c, severity, where, (config, run.ab)
                    )
            order = [f"{key} {sev}" for sev in severities for key in ("A", "B")]
            print_report(runs["bare"], [runs[key] for key in order], None, args.open)
            for severity in severities:
                b_over_a = runs[f"B {severity}"].rate / runs[f"A {severity}"].rate
                print(f"{severity} B/A: {b_over_a:.2f}×", flush=True)
            rounds.append(runs)
    for severity in severities:
        rates = {
            key: [r[key if key == "bare" else f"{key} {severity}"].rate for r in rounds]
            for key in ("bare", "A", "B")
        }
        print_ab_summary(rates, f"{severity} lifecycles/s (open→ack→resolve)", WORKER_CONFIGS)
        if run.db_ms:
            print_store_cost(run.db_ms, rates)
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # Skip interpreter finalisation: the Temporal bridge's threads can still call into Python
    # while it tears down ("PyGILState_Release ... finalizing"), after the report is out.
    os._exit(code)
