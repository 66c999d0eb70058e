"""Escalation skew: how late pages reach Twilio with many open P1s, Slack healthy or failing.

    python benchmarks/escalation_skew.py [--incidents 1000] [--window 10] [--concurrency 50]
                                         [--rate 0] [--rounds 3] [--slack healthy,500]
                                         [--mps 1000]

Starts its own dev server (``measure.start_dev_server``), then, alternating for ``--rounds``:

(a) bare Temporal: ``--incidents`` workflows defined here (``BareLadder``) that sleep
    through the same windows and run one activity per level, which POSTs an SMS to the
    same local Twilio; their worker is a subprocess (this file, ``--bare-worker``). Their
    timer lateness is the floor any Temporal workflow pays on this machine;
(b) Firewatch, once per ``--slack`` mode: ``--incidents`` P1 incidents opened with
    ``starter.incidents.trigger`` (update-with-start) at ``--concurrency``, nobody
    acknowledging, the real worker as ``python worker.py`` with Slack and Twilio switched
    on against the local fakes (``tests.channels``). Slack modes: ``healthy``; ``500``
    (every Slack API call answered HTTP 500); ``hang`` (Slack's port accepts connections
    and never answers: each call ends at the worker's HTTP timeout, 10 s).

The policy is the shipped one with the P1 ladder on ``--window``-second levels and one
pass (pages at +0, +w, +2w, +3w). A page is due at the incident's ``opened_at`` (the
workflow's clock when it opened) plus the windows before its level; its lateness is its
arrival at the fake Twilio (``time.time()`` when the request is read) minus that due
instant. Both are wall clock on this machine. Reported: p50, p99 and max over every page
of the run; target p99 ≤ 1 s. The fakes run in this process, beside the load generator:
when this process is busy, arrivals are recorded late, which overstates lateness a little
(for the baseline too).

Twilio's per-number throttle (``FIREWATCH_TWILIO_MPS``, default 1 message/s, as Twilio
queues long codes) would space 4,000 pages a second apart and measure nothing else: it is
raised to ``--mps`` for the benchmark, and the report says so.

``--rate N`` opens at most N incidents a second (both runs), for a storm that builds up
instead of arriving at once: with 1,000 incidents at 10/s the last opens 100 s after the
first, by when all 1,000 are open together. The default, 0, opens as fast as
``--concurrency`` allows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.measure import (
    child_env,
    machine_info,
    run_many,
    start_dev_server,
    start_polling_process,
    start_worker_process,
    stop_process,
)

TARGET_P99_S = 1.0
SLACK_MODES = ("healthy", "500", "hang")
_BARE_BODY = re.compile(r"^bare (?P<id>\S+) level (?P<level>\d+) due (?P<due>[0-9.]+)$")
_INCIDENT_ID = re.compile(r"INC-\d{4}-\d{2}-\d{2}-\d+")


# ---- (a) the bare baseline ---------------------------------------------------------------


@dataclass
class BareLadderInput:
    name: str
    windows_s: list[float]  # level i is due at start + sum(windows_s[:i])
    to: str


@dataclass
class BarePage:
    to: str
    body: str


_http: Any = None  # one keep-alive client per bare worker process


@activity.defn
async def bare_page(page: BarePage) -> None:
    """One SMS to the local Twilio, as its REST API takes it (form, Basic auth)."""
    import httpx

    from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

    global _http
    if _http is None:
        _http = httpx.AsyncClient(
            base_url=os.environ["BENCH_TWILIO_URL"], auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10
        )
    response = await _http.post(
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": page.to, "From": FROM_NUMBER, "Body": page.body},
    )
    response.raise_for_status()


@workflow.defn
class BareLadder:
    """Sleeps through the windows, one SMS per level; then stays open, as an unacknowledged
    incident does, until the benchmark terminates it."""

    @workflow.run
    async def run(self, inp: BareLadderInput) -> None:
        due = workflow.now()
        for level, window in enumerate(inp.windows_s):
            wait = (due - workflow.now()).total_seconds()
            if wait > 0:
                await workflow.sleep(wait)
            await workflow.execute_activity(
                bare_page,
                BarePage(inp.to, f"bare {inp.name} level {level} due {due.timestamp():.6f}"),
                start_to_close_timeout=timedelta(seconds=30),
            )
            due += timedelta(seconds=window)
        await workflow.wait_condition(lambda: False)


async def bare_worker_main() -> int:
    """``--bare-worker``: the baseline's worker process (settings from the environment)."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    from activities.settings import get_settings
    from benchmarks import escalation_skew as module
    from worker import ACTIVITY_THREADS, workflow_runner

    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"],
        namespace=os.environ["TEMPORAL_NAMESPACE"],
        data_converter=pydantic_data_converter,  # as the benchmark's client
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Firewatch's worker settings: same runner, activity slots and cache.
    settings = get_settings()
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[module.BareLadder],
        activities=[module.bare_page],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=ACTIVITY_THREADS,
        max_cached_workflows=settings.max_cached_workflows,
    ):
        await stop.wait()
    return 0


# ---- measuring ---------------------------------------------------------------------------


def paced(one: Callable[[int], Awaitable[str]], rate: float) -> Callable[[int], Awaitable[str]]:
    """``one`` with call ``i`` held until ``i / rate`` seconds after the first (rate > 0)."""
    if rate <= 0:
        return one
    began: list[float] = []

    async def at_rate(i: int) -> str:
        if not began:
            began.append(time.monotonic())
        delay = began[0] + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return await one(i)

    return at_rate


@dataclass
class Run:
    name: str
    expected: int  # pages
    opened_s: float = 0.0  # time to open/start every incident
    late_s: list[float] = field(default_factory=list)  # one per page that arrived
    by_level: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    extra: int = 0  # pages beyond the expected ones (duplicates)
    errors: int = 0  # incidents that failed to open
    failures: dict[str, int] = field(default_factory=dict)  # why, by outcome

    def add(self, level: int, late: float) -> None:
        self.late_s.append(late)
        self.by_level[level].append(late)

    def pct(self, q: float, level: int | None = None) -> float:
        ordered = sorted(self.late_s if level is None else self.by_level[level])
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p99(self) -> float:
        return self.pct(0.99)


def policy_file(window_s: int, work: Path) -> tuple[Path, list[float]]:
    """The shipped policy with the P1 ladder on ``window_s``-second levels, one pass."""
    from domain.policy import Severity, SeverityPolicy
    from tests.conftest import load_default_policy
    from tests.policies import write_policy

    base = load_default_policy()
    p1 = base.for_severity(Severity.P1)
    window = timedelta(seconds=window_s)
    ladder = tuple(level.model_copy(update={"window": window}) for level in p1.ladder)
    fast = SeverityPolicy.model_validate({**p1.model_dump(), "ladder": ladder, "loops": 1})
    policy = base.model_validate(
        {**base.model_dump(), "severities": {**base.severities, Severity.P1: fast}}
    )
    return write_policy(policy, work / "policy.yaml"), [float(window_s)] * len(ladder)


def sms_arrivals(twilio: Any) -> list[tuple[str, float]]:
    """(body, arrival) of every SMS the fake Twilio accepted."""
    return [
        (str(c.request.params.get("Body", "")), c.request.at)
        for c in twilio.calls_to("POST Messages", ok_only=True)
    ]


async def wait_for_pages(twilio: Any, expected: int, deadline: float) -> None:
    while len(twilio.calls_to("POST Messages", ok_only=True)) < expected:
        if time.monotonic() > deadline:
            return  # the report shows what is missing
        await asyncio.sleep(0.5)


async def terminate_all(client: Any, workflow_ids: list[str], concurrency: int) -> None:
    """End a run's workflows so that the next run starts on an idle server."""

    async def end(i: int) -> str:
        try:
            await client.get_workflow_handle(workflow_ids[i]).terminate("benchmark run over")
        except Exception as err:  # already ended
            return type(err).__name__
        return "ok"

    await run_many("terminate", len(workflow_ids), concurrency, end)


async def bench_bare(
    client: Any, args: argparse.Namespace, windows: list[float], work: Path
) -> Run:
    from tests.channels.fake_twilio import FakeTwilio

    n, levels = args.incidents, len(windows)
    run = Run("bare Temporal", n * levels)
    queue = f"skew-bare-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:6]
    target = client.service_client.config.target_host
    with FakeTwilio() as twilio:
        env = {
            **child_env(target, client.namespace, work / "bare-data", queue),
            "BENCH_TWILIO_URL": twilio.url,
        }
        argv = [sys.executable, str(Path(__file__).resolve()), "--bare-worker"]
        proc = await start_polling_process(client, argv, env, queue, work / "bare-worker.log")
        ids = [f"skew-bare-{tag}-{i}" for i in range(n)]
        try:

            async def one(i: int) -> str:
                await client.start_workflow(
                    BareLadder.run,
                    BareLadderInput(ids[i], windows, f"+1555{i % 10_000_000:07d}"),
                    id=ids[i],
                    task_queue=queue,
                )
                return "ok"

            started = await run_many("start", n, args.concurrency, paced(one, args.rate))
            run.opened_s, run.errors = started.seconds, started.errors
            grace = sum(windows[:-1]) + args.grace
            await wait_for_pages(twilio, run.expected, time.monotonic() + grace)
            seen: set[tuple[str, int]] = set()
            for body, at in sms_arrivals(twilio):
                match = _BARE_BODY.match(body)
                if match is None:
                    continue
                key = (match["id"], int(match["level"]))
                if key in seen:
                    run.extra += 1
                    continue
                seen.add(key)
                run.add(int(match["level"]), at - float(match["due"]))
        finally:
            await terminate_all(client, ids, args.concurrency)
            stop_process(proc)
    return run


async def bench_firewatch(
    client: Any,
    args: argparse.Namespace,
    slack_mode: str,
    windows: list[float],
    policy: Path,
    work: Path,
) -> Run:
    from domain.ids import incident_workflow_id
    from domain.incident import Alert
    from domain.policy import Severity
    from starter.incidents import trigger
    from tests.channels.conftest import SIGNING_SECRET
    from tests.channels.fake_http import BlackHole, Reply
    from tests.channels.fake_slack import TOKEN, FakeSlack
    from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

    n, levels = args.incidents, len(windows)
    label = {"healthy": "Slack healthy", "500": "Slack answers 500", "hang": "Slack hangs"}
    run = Run(f"Firewatch, {label[slack_mode]}", n * levels)
    queue = f"skew-fw-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:6]
    slack = FakeSlack()
    for person in ("ALICE", "BOB", "CAROL", "DAVE", "ERIN", "FRANK"):
        slack.add_user(f"U0{person}", f"{person.lower()}@madplan.example")
    hole: BlackHole | None = None
    if slack_mode == "hang":
        hole = BlackHole(slack.port).start()  # the fake itself never starts
    else:
        slack.start()
    if slack_mode == "500":
        slack.answer_everything(
            Reply(500, "<html>Internal Server Error</html>", content_type="text/html")
        )
    twilio = FakeTwilio().start()
    opened_at: dict[str, datetime] = {}
    alerts = [
        Alert(
            source="cli",
            dedup_key=f"skew-{tag}-{i}",
            summary=f"benchmark incident {i}",
            service="api",
            severity=Severity.P1,
        )
        for i in range(n)
    ]
    workflow_ids = [incident_workflow_id(a.dedup_key, a.integration) for a in alerts]
    proc = None
    try:
        extra_env = {
            "FIREWATCH_POLICY": str(policy),
            "FIREWATCH_SLACK_BOT_TOKEN": TOKEN,
            "FIREWATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "FIREWATCH_SLACK_BASE_URL": slack.api_url,
            "FIREWATCH_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "FIREWATCH_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "FIREWATCH_TWILIO_FROM": FROM_NUMBER,
            "FIREWATCH_TWILIO_BASE_URL": twilio.url,
            "FIREWATCH_TWILIO_MPS": str(args.mps),
        }
        if args.cache is not None:
            extra_env["FIREWATCH_MAX_CACHED_WORKFLOWS"] = str(args.cache)
        # One data dir for every Firewatch run: INC numbers keep counting across runs.
        proc = await start_worker_process(
            client, work / "fw-data", queue, work / f"fw-worker-{tag}.log", extra_env
        )

        async def one(i: int) -> str:
            st = await trigger(client, alerts[i], task_queue=queue)
            if st.incident_id is None:
                return "no incident id"
            opened_at[st.incident_id] = st.opened_at
            return "ok"

        started = await run_many("open", n, args.concurrency, paced(one, args.rate))
        run.opened_s, run.errors = started.seconds, started.errors
        run.failures = {k: v for k, v in started.statuses.items() if k != "ok"}
        grace = sum(windows[:-1]) + args.grace
        await wait_for_pages(twilio, run.expected, time.monotonic() + grace)
        # The k-th SMS about an incident is its level-k page: the levels are a window apart
        # and nothing else goes to a phone while nobody has acknowledged.
        arrivals: dict[str, list[float]] = defaultdict(list)
        for body, at in sms_arrivals(twilio):
            match = _INCIDENT_ID.search(body)
            if match is not None and match[0] in opened_at:
                arrivals[match[0]].append(at)
        for incident_id, ats in arrivals.items():
            run.extra += max(0, len(ats) - levels)
            for level, at in enumerate(sorted(ats)[:levels]):
                due = opened_at[incident_id] + timedelta(seconds=sum(windows[:level]))
                run.add(level, at - due.timestamp())
    finally:
        await terminate_all(client, workflow_ids, args.concurrency)
        if proc is not None:
            stop_process(proc)
        twilio.stop()
        slack.stop()
        if hole is not None:
            hole.stop()
    return run


# ---- the report --------------------------------------------------------------------------


def print_runs(round_no: int, runs: list[Run]) -> None:
    print()
    print(
        f"{'round':<6}{'run':<30}{'pages':>12}{'opened in s':>12}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'> 1 s':>7}"
    )
    for run in runs:
        pages = f"{len(run.late_s)}/{run.expected}"
        over = sum(1 for x in run.late_s if x > TARGET_P99_S)
        print(
            f"{round_no:<6}{run.name:<30}{pages:>12}{run.opened_s:>12.1f}"
            f"{run.pct(0.5) * 1000:>8.0f}{run.p99 * 1000:>8.0f}{run.pct(1.0) * 1000:>8.0f}"
            f"{over:>7}"
        )
        levels = ", ".join(
            f"L{level + 1} {run.pct(0.5, level) * 1000:.0f}/{run.pct(0.99, level) * 1000:.0f}"
            for level in sorted(run.by_level)
        )
        print(f"{'':<6}  p50/p99 ms by level: {levels}")
        if run.extra or run.errors:
            print(f"      {run.name}: {run.extra} duplicate pages, {run.errors} failed to open")
            for outcome, count in sorted(run.failures.items()):
                print(f"        {count} × {outcome}")
    print(flush=True)


def print_summary(rounds: list[list[Run]]) -> bool:
    ok = True
    names = [r.name for r in rounds[0]]
    print("median over rounds (p99 per round):")
    for i, name in enumerate(names):
        p99s = [runs[i].p99 for runs in rounds]
        median = statistics.median(p99s)
        complete = all(
            len(runs[i].late_s) == runs[i].expected and not runs[i].extra for runs in rounds
        )
        each = ", ".join(f"{x * 1000:.0f}" for x in p99s)
        line = f"  {name:<30} p99 {median * 1000:6.0f} ms  ({each})"
        if not name.startswith("bare"):
            met = median <= TARGET_P99_S and complete
            ok = ok and met
            line += f"  target p99 ≤ {TARGET_P99_S:.0f} s, every page once: "
            line += "met" if met else "NOT met"
        print(line)
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000, help="open P1s per run")
    parser.add_argument("--window", type=int, default=10, help="seconds per ladder level")
    parser.add_argument("--concurrency", type=int, default=50, help="opening concurrency")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="openings per second at most (0: no limit)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bare then each Firewatch run, this many times: the median resists the noise",
    )
    parser.add_argument(
        "--slack",
        default="healthy,500",
        help=f"comma-separated Slack modes for the Firewatch runs, of {', '.join(SLACK_MODES)}",
    )
    parser.add_argument(
        "--mps", type=float, default=1000.0, help="FIREWATCH_TWILIO_MPS for the benchmark"
    )
    parser.add_argument(
        "--cache", type=int, default=None, help="FIREWATCH_MAX_CACHED_WORKFLOWS for the worker"
    )
    parser.add_argument("--grace", type=float, default=120.0, help="seconds to wait for late pages")
    parser.add_argument("--skip-bare", action="store_true", help="no bare baseline runs")
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        return await bare_worker_main()
    modes = [m.strip() for m in args.slack.split(",") if m.strip()]
    if not modes or any(m not in SLACK_MODES for m in modes):
        parser.error(f"--slack takes {', '.join(SLACK_MODES)}")

    print(machine_info(), flush=True)
    print(
        f"{args.incidents} P1s per run, ladder windows {args.window} s (pages at"
        f" +0/+{args.window}/+{2 * args.window}/+{3 * args.window} s), opened at concurrency"
        f" {args.concurrency}{f' and at most {args.rate:g}/s' if args.rate > 0 else ''};"
        f" FIREWATCH_TWILIO_MPS={args.mps:g} for this benchmark (Twilio's"
        " per-number throttle, default 1/s, would otherwise space the pages a second apart)",
        flush=True,
    )
    env = await start_dev_server()
    rounds: list[list[Run]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="fw-skew-") as tmp:
            work = Path(tmp)
            policy, windows = policy_file(args.window, work)
            for round_no in range(1, args.rounds + 1):
                runs: list[Run] = []
                if not args.skip_bare:
                    print(f"round {round_no}/{args.rounds}: bare Temporal", flush=True)
                    runs.append(await bench_bare(env.client, args, windows, work))
                for mode in modes:
                    print(f"round {round_no}/{args.rounds}: Firewatch, Slack {mode}", flush=True)
                    runs.append(
                        await bench_firewatch(env.client, args, mode, windows, policy, work)
                    )
                print_runs(round_no, runs)
                rounds.append(runs)
    finally:
        await env.shutdown()
    ok = print_summary(rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # Skip interpreter finalisation: the Temporal bridge's threads can still call into Python
    # while it tears down ("PyGILState_Release ... finalizing"), after the report is out.
    os._exit(code)
