"""Scale-out: a correlated outage on one worker with SQLite against two with PostgreSQL.

    python benchmarks/scale_out.py [--alerts 1000] [--rounds 2] [--spread 1.0] [--quick]

Starts its own dev server (``measure.start_dev_server``) and a throw-away PostgreSQL
(``tests.postgres.PostgresServer``), then alternates, ``--rounds`` times each (A, B, A, B):

A) one ``python worker.py`` and one API (``uvicorn starter.api.app:app``) sharing one data
   dir, on the embedded SQLite file (``FIREWATCH_DATABASE_URL`` unset);
B) two worker processes and two API processes, each with a data dir of its own, on one
   PostgreSQL database (``FIREWATCH_DATABASE_URL``), alerts spread round-robin over both APIs.

The processes are started as ``tests/dev/cluster.py`` starts them, with the shipped policy
written to a file (``FIREWATCH_POLICY``: without the seed's runbooks, as the other
benchmarks, so that no check reaches out of this machine), Twilio switched on against a
local ``FakeTwilio`` (``FIREWATCH_TWILIO_MPS=1000``: the per-number throttle would space
1,000 pages to the one on-call phone a second apart), Slack not configured.

Each round has a fresh task queue, fresh processes and a fresh database. After a short
warm-up, ``--alerts`` distinct P1 alerts (PagerDuty Events v2, ``severity: critical``,
each its own dedup key) are POSTed to ``/v2/enqueue``, due evenly over ``--spread``
seconds (open loop: an alert is sent at its due instant whatever the earlier ones are
doing, through ``--connections`` keep-alive connections in total). Per alert:

* ingest: its due instant to the 202 (the API answers once Temporal recorded the alert);
* opened: to the incident's ``opened_at`` (the first workflow task's start, as written
  beside its INC number in ``incident_numbers``);
* first page: to the first SMS at the fake Twilio carrying its INC id.

Reported per round and as the median over rounds: p50/p99/max of each, accepted alerts/s,
and the time from the first POST until every incident's first page arrived; B/A ratios.
From each incident's history, the first page's latency is split into ingest (POST→202),
waiting for the first workflow task (202→opened), the opening task (opened→page activity
scheduled: the "Open incident" local activity that allocates the INC number), waiting for
the page activity (scheduled→started) and the delivery (started→SMS at Twilio).

Separately, the database time an incident costs: ``--db-incidents`` times the writes an
opened and paged incident makes (INC number, ledger begin and finish, outbox row, ticket
document), in this process, against a fresh SQLite file and a fresh PostgreSQL database.

All times are wall clock on this machine; the fakes and the load generator share this
process, so a busy moment here records an arrival a little late (for A and B alike).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.alert_storm import RawConnection
from benchmarks.configs import CONFIGS, Config, bench_db, deployment
from benchmarks.measure import machine_info, run_many, start_dev_server

_INCIDENT_ID = re.compile(r"INC-\d{4}-\d{2}-\d{2}-\d+")
WARMUP_PER_API = 10


# ---- one alert, one round ------------------------------------------------------------------


@dataclass
class Marks:
    """Moments (epoch seconds) from an incident's history, up to its first page."""

    task_started: float | None = None  # the first workflow task (opened_at)
    page_scheduled: float | None = None  # the first "Notify" activity
    page_started: float | None = None
    tasks: int = 0  # workflow tasks started before the page was scheduled
    task_timeouts: int = 0  # of which timed out (the workflow task timeout) or failed


@dataclass
class Sample:
    index: int
    workflow_id: str
    sent: float = 0.0  # the alert's due instant (epoch seconds)
    answered: float | None = None  # its 2xx
    status: str = ""
    opened: float | None = None
    paged: float | None = None
    marks: Marks | None = None


@dataclass
class RoundResult:
    config: Config
    round_no: int
    samples: list[Sample]
    setup_s: float = 0.0
    incidents: int = 0  # storm incidents with an INC number
    duplicates: int = 0  # first-page SMS beyond one per storm incident
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> list[Sample]:
        return [s for s in self.samples if s.answered is not None and s.status == "ok"]

    @property
    def first_sent(self) -> float:
        return min(s.sent for s in self.samples)

    @property
    def rate(self) -> float:
        """Accepted alerts per second, from the first POST to the last 2xx."""
        ok = self.accepted
        if not ok:
            return 0.0
        last = max(s.answered for s in ok if s.answered is not None)
        return len(ok) / max(last - self.first_sent, 1e-9)

    @property
    def drain_s(self) -> float:
        """From the first POST until the last first page arrived."""
        paged = [s.paged for s in self.samples if s.paged is not None]
        return max(paged) - self.first_sent if paged else float("nan")

    def latencies(self, what: str) -> list[float]:
        out = []
        for s in self.samples:
            end = {"ingest": s.answered, "opened": s.opened, "page": s.paged}[what]
            if end is not None and s.status == "ok":
                out.append(end - s.sent)
        return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile (as ``measure.Result.pct``); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# The first page's latency, in consecutive parts (each from the history or our clocks).
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("ingest", "API: POST → 202 (Temporal recorded the alert)"),
    ("task_wait", "queue: 202 → first workflow task started (opened_at)"),
    ("opening", "opening task: → page activity scheduled (INC number, local activity)"),
    ("activity_wait", "queue: page activity scheduled → started"),
    ("delivery", "delivery: page activity started → SMS at Twilio"),
)


def segments(s: Sample) -> dict[str, float] | None:
    m = s.marks
    if (
        m is None
        or s.answered is None
        or s.paged is None
        or m.task_started is None
        or m.page_scheduled is None
        or m.page_started is None
    ):
        return None
    return {
        "ingest": s.answered - s.sent,
        "task_wait": m.task_started - s.answered,
        "opening": m.page_scheduled - m.task_started,
        "activity_wait": m.page_started - m.page_scheduled,
        "delivery": s.paged - m.page_started,
    }


# ---- the load ------------------------------------------------------------------------------


def pd_event(routing_key: str, dedup_key: str, i: int) -> bytes:
    event = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": f"Shared dependency down: check {i} failing",
            "source": f"svc-{i % 50}",
            "severity": "critical",
            "custom_details": {"check": i},
        },
    }
    return json.dumps(event).encode()


async def post(pool: asyncio.Queue[RawConnection], body: bytes) -> str:
    """One POST /v2/enqueue on a pooled keep-alive connection; once more on a fresh
    connection if the server had closed the idle one (the dedup key makes it idempotent)."""
    connection = await pool.get()
    try:
        for attempt in (1, 2):
            try:
                status = await connection.post_json("/v2/enqueue", body)
                return "ok" if status == 202 else f"HTTP {status}"
            except (ConnectionError, asyncio.IncompleteReadError) as err:
                connection.close()
                connection = RawConnection(connection.host, connection.port)
                if attempt == 2:
                    return type(err).__name__
        raise AssertionError("unreachable")
    finally:
        pool.put_nowait(connection)


async def open_pools(urls: list[str], connections: int) -> list[asyncio.Queue[RawConnection]]:
    """``connections`` keep-alive connections in total, split evenly over the APIs, opened
    now (just before the storm: uvicorn closes one idle for 5 s)."""
    pools = []
    for n, url in enumerate(urls):
        port = int(url.rsplit(":", 1)[1])
        pool: asyncio.Queue[RawConnection] = asyncio.Queue()
        share = connections // len(urls) + (1 if n < connections % len(urls) else 0)
        for _ in range(max(1, share)):
            conn = RawConnection("127.0.0.1", port)
            conn.reader, conn.writer = await asyncio.open_connection("127.0.0.1", port)
            pool.put_nowait(conn)
        pools.append(pool)
    return pools


def close_pools(pools: list[asyncio.Queue[RawConnection]]) -> None:
    for pool in pools:
        while not pool.empty():
            pool.get_nowait().close()


async def storm(
    urls: list[str], bodies: list[bytes], samples: list[Sample], spread: float, connections: int
) -> None:
    """Alert i is due at start + i·spread/n and goes to API i mod len(urls), open loop."""
    pools = await open_pools(urls, connections)
    start = time.time() + 0.2
    n = len(bodies)

    async def one(i: int) -> None:
        due = start + i * spread / n
        await asyncio.sleep(max(0.0, due - time.time()))
        sample = samples[i]
        sample.sent = due
        try:
            sample.status = await post(pools[i % len(pools)], bodies[i])
        except Exception as err:
            sample.status = type(err).__name__
        sample.answered = time.time()

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        close_pools(pools)


# ---- reading what happened -------------------------------------------------------------------


def sms_first_arrivals(twilio: Any) -> tuple[dict[str, float], int]:
    """INC id → the first SMS about it at the fake Twilio; and how many SMS came after the
    first for an incident (duplicates: nothing else pages a phone this early)."""
    first: dict[str, float] = {}
    extra = 0
    for call in twilio.calls_to("POST Messages", ok_only=True):
        match = _INCIDENT_ID.search(str(call.request.params.get("Body", "")))
        if match is None:
            continue
        if match[0] in first:
            extra += 1
            first[match[0]] = min(first[match[0]], call.request.at)
        else:
            first[match[0]] = call.request.at
    return first, extra


def numbered(url: str, prefix: str) -> dict[str, tuple[str, float | None]]:
    """Workflow id → (INC id, opened_at) of every incident whose workflow id starts with
    ``prefix``, from the ``incident_numbers`` table."""
    from sqlalchemy import select

    from domain.ids import format_incident_id
    from storage.database import Database
    from storage.schema import incident_numbers

    n = incident_numbers.c
    with Database.open(url).read() as conn:
        rows = conn.execute(
            select(n.workflow_key, n.day, n.sequence, n.opened_at).where(
                n.workflow_key.startswith(prefix)
            )
        ).all()
    out: dict[str, tuple[str, float | None]] = {}
    for key, day, sequence, opened_at in rows:
        inc = format_incident_id(datetime.fromisoformat(day).date(), int(sequence))
        opened = datetime.fromisoformat(opened_at).timestamp() if opened_at else None
        out[str(key).split("#", 1)[0]] = (inc, opened)
    return out


async def history_marks(client: Any, workflow_id: str) -> Marks:
    from temporalio.contrib.pydantic import pydantic_data_converter

    from activities.models import Notification

    converter = pydantic_data_converter.payload_converter
    marks = Marks()
    page_event = -1
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        at = event.event_time.seconds + event.event_time.nanos / 1e9
        if event.HasField("workflow_task_started_event_attributes"):
            if marks.task_started is None:
                marks.task_started = at
            if marks.page_scheduled is None:
                marks.tasks += 1
        elif event.HasField("workflow_task_timed_out_event_attributes") or event.HasField(
            "workflow_task_failed_event_attributes"
        ):
            if marks.page_scheduled is None:
                marks.task_timeouts += 1
        elif event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if marks.page_scheduled is None and attrs.activity_type.name == "Notify":
                [note] = converter.from_payloads(attrs.input.payloads, [Notification])
                if note.kind == "page":
                    marks.page_scheduled, page_event = at, event.event_id
        elif (
            event.HasField("activity_task_started_event_attributes")
            and event.activity_task_started_event_attributes.scheduled_event_id == page_event
        ):
            marks.page_started = at
            break
    return marks


async def fetch_marks(client: Any, samples: list[Sample]) -> None:
    async def one(i: int) -> str:
        samples[i].marks = await history_marks(client, samples[i].workflow_id)
        return "ok"

    await run_many("histories", len(samples), 16, one)


async def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# ---- one round -------------------------------------------------------------------------------


async def run_round(
    client: Any,
    config: Config,
    round_no: int,
    args: argparse.Namespace,
    pg: Any,
    policy: Path,
    work: Path,
) -> RoundResult:
    import httpx

    from domain.ids import incident_workflow_id
    from tests.channels.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

    tag = uuid.uuid4().hex[:6]
    queue = f"scale-{config.key.lower()}-{tag}"
    tmp = work / f"round-{round_no}-{config.key}"
    twilio = FakeTwilio().start()
    channels = {
        "FIREWATCH_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "FIREWATCH_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "FIREWATCH_TWILIO_FROM": FROM_NUMBER,
        "FIREWATCH_TWILIO_BASE_URL": twilio.url,
        "FIREWATCH_TWILIO_MPS": str(args.mps),
    }
    family = f"scale-{tag}"
    samples = [
        Sample(i, incident_workflow_id(f"{family}-{i:05d}", "pagerduty"))
        for i in range(args.alerts)
    ]
    result = RoundResult(config, round_no, samples)
    try:
        async with deployment(client, config, pg, policy, tmp, queue, channels) as running:
            running.workflow_ids += [s.workflow_id for s in samples]
            urls = running.urls
            result.setup_s = running.setup_s
            key = running.pagerduty_key()

            # Warm-up: every process has opened and paged a few incidents before the storm.
            warm = [pd_event(key, f"warm-{tag}-{i}", i) for i in range(WARMUP_PER_API * len(urls))]
            running.workflow_ids += [
                incident_workflow_id(f"warm-{tag}-{i}", "pagerduty") for i in range(len(warm))
            ]
            async with httpx.AsyncClient(timeout=60) as http:
                replies = await asyncio.gather(
                    *(
                        http.post(
                            f"{urls[i % len(urls)]}/v2/enqueue",
                            content=body,
                            headers={"Content-Type": "application/json"},
                        )
                        for i, body in enumerate(warm)
                    )
                )
            warmed = sum(1 for r in replies if r.status_code == 202)
            await wait_for(lambda: len(sms_first_arrivals(twilio)[0]) >= warmed, timeout=60)
            before = set(sms_first_arrivals(twilio)[0])

            bodies = [pd_event(key, f"{family}-{i:05d}", i) for i in range(args.alerts)]
            print(
                f"  {config.label}: processes up in {result.setup_s:.1f} s; warm-up {warmed}"
                f" alerts; storm of {args.alerts} alerts over {args.spread:g} s",
                flush=True,
            )
            await storm(urls, bodies, samples, args.spread, args.connections)
            accepted = len(result.accepted)

            def all_paged() -> bool:
                return len(set(sms_first_arrivals(twilio)[0]) - before) >= accepted

            drained = await wait_for(all_paged, timeout=args.drain_timeout, interval=0.5)
            if not drained:
                print(
                    f"  !! not every first page arrived within {args.drain_timeout:g} s",
                    flush=True,
                )
            await asyncio.sleep(0.5)  # a duplicate page would show up now

            incidents = numbered(running.database_url, f"incident/pagerduty/{family}-")
            first, extra = sms_first_arrivals(twilio)
            result.incidents = len(incidents)
            result.duplicates = extra
            for s in samples:
                found = incidents.get(s.workflow_id)
                if found is not None:
                    inc, s.opened = found
                    s.paged = first.get(inc)
            errors: dict[str, int] = defaultdict(int)
            for s in samples:
                if s.status != "ok":
                    errors[s.status] += 1
            result.errors = dict(errors)
            await fetch_marks(client, [s for s in samples if s.paged is not None])
    finally:
        twilio.stop()
    return result


# ---- the report --------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds == seconds else "-"


def print_round(result: RoundResult) -> None:
    n = len(result.samples)
    ok = len(result.accepted)
    paged = sum(1 for s in result.samples if s.paged is not None)
    print(
        f"round {result.round_no} {result.config.label}: {ok}/{n} accepted"
        f" ({result.rate:.0f}/s), {result.incidents} incidents numbered, first pages"
        f" {paged}/{ok}, all first pages {fmt(result.drain_s)} s after the first POST"
    )
    if result.errors:
        print(f"  errors: {result.errors}")
    if result.duplicates:
        print(f"  duplicate SMS about a storm incident: {result.duplicates}")
    print(f"  {'seconds from POST to':<24}{'p50':>8}{'p99':>8}{'max':>8}")
    for what, label in (("ingest", "2xx"), ("opened", "opened"), ("page", "first page")):
        values = result.latencies(what)
        print(
            f"  {label:<24}{fmt(pct(values, 0.5)):>8}{fmt(pct(values, 0.99)):>8}"
            f"{fmt(max(values) if values else float('nan')):>8}"
        )
    print_breakdown(result)
    print(flush=True)


def breakdown(result: RoundResult) -> tuple[dict[str, list[float]], dict[str, float], int]:
    """Per segment: every alert's value; the mean over the slowest 1 % (by POST→page)."""
    rows = [(s, seg) for s in result.samples if (seg := segments(s)) is not None]
    by_segment: dict[str, list[float]] = {
        name: [seg[name] for _, seg in rows] for name, _ in SEGMENTS
    }
    rows.sort(key=lambda row: (row[0].paged or 0.0) - row[0].sent)
    slow = rows[-max(1, len(rows) // 100) :] if rows else []
    slow_mean = {
        name: statistics.fmean(seg[name] for _, seg in slow) if slow else float("nan")
        for name, _ in SEGMENTS
    }
    return by_segment, slow_mean, len(slow)


def task_stats(results: list[RoundResult]) -> tuple[float, float, float]:
    """Over the incidents with a history: % with a workflow task timed out (or failed)
    before the page was scheduled, mean such tasks, mean workflow tasks up to the page."""
    marks = [s.marks for r in results for s in r.samples if s.marks is not None]
    if not marks:
        return float("nan"), float("nan"), float("nan")
    hit = sum(1 for m in marks if m.task_timeouts) / len(marks) * 100
    return (
        hit,
        statistics.fmean(m.task_timeouts for m in marks),
        statistics.fmean(m.tasks for m in marks),
    )


def print_breakdown(result: RoundResult) -> None:
    by_segment, slow_mean, slow_n = breakdown(result)
    counted = len(next(iter(by_segment.values()), []))
    print(
        f"  where the first page's time goes ({counted} incidents; slowest 1 % = {slow_n}"
        " by POST→page):"
    )
    print(f"  {'seconds':<70}{'mean':>7}{'p50':>7}{'p99':>7}{'slow1%':>8}")
    for name, label in SEGMENTS:
        values = by_segment[name]
        mean = statistics.fmean(values) if values else float("nan")
        print(
            f"  {label:<70}{fmt(mean):>7}{fmt(pct(values, 0.5)):>7}{fmt(pct(values, 0.99)):>7}"
            f"{fmt(slow_mean[name]):>8}"
        )
    hit, timeouts, tasks = task_stats([result])
    print(
        f"  before the page was scheduled: {tasks:.1f} workflow tasks per incident on average;"
        f" {hit:.0f} % of incidents had one time out or fail ({timeouts:.2f} per incident)"
    )


FIGURES: tuple[tuple[str, Callable[[RoundResult], float]], ...] = (
    ("accepted alerts/s", lambda r: r.rate),
    ("POST→2xx p50 s", lambda r: pct(r.latencies("ingest"), 0.5)),
    ("POST→2xx p99 s", lambda r: pct(r.latencies("ingest"), 0.99)),
    ("POST→2xx max s", lambda r: max(r.latencies("ingest"), default=float("nan"))),
    ("POST→opened p50 s", lambda r: pct(r.latencies("opened"), 0.5)),
    ("POST→opened p99 s", lambda r: pct(r.latencies("opened"), 0.99)),
    ("POST→opened max s", lambda r: max(r.latencies("opened"), default=float("nan"))),
    ("POST→first page p50 s", lambda r: pct(r.latencies("page"), 0.5)),
    ("POST→first page p99 s", lambda r: pct(r.latencies("page"), 0.99)),
    ("POST→first page max s", lambda r: max(r.latencies("page"), default=float("nan"))),
    ("all first pages drained s", lambda r: r.drain_s),
)


def print_summary(results: list[RoundResult]) -> dict[str, dict[str, float]]:
    med: dict[str, dict[str, float]] = {}
    for config in CONFIGS:
        mine = [r for r in results if r.config == config]
        med[config.key] = {name: statistics.median(f(r) for r in mine) for name, f in FIGURES}
        med[config.key]["rounds"] = len(mine)
    a, b = med["A"], med["B"]
    print(f"summary: median over rounds ({int(a['rounds'])} each); then each round, A | B")
    print(f"  {'':<28}{'A':>9}{'B':>9}{'B/A':>8}   A rounds | B rounds")
    for name, f in FIGURES:
        each = {
            c.key: ", ".join(
                fmt(f(r)) if name != "accepted alerts/s" else f"{f(r):.0f}"
                for r in results
                if r.config == c
            )
            for c in CONFIGS
        }
        ratio = b[name] / a[name] if a[name] else float("nan")
        shown = (lambda v: f"{v:.0f}") if name == "accepted alerts/s" else fmt
        print(
            f"  {name:<28}{shown(a[name]):>9}{shown(b[name]):>9}{ratio:>7.2f}×"
            f"   {each['A']} | {each['B']}"
        )
    print("  where the time goes, mean seconds over the slowest 1 % of each round (median):")
    for name, label in SEGMENTS:
        vals = {
            c.key: statistics.median(breakdown(r)[1][name] for r in results if r.config == c)
            for c in CONFIGS
        }
        print(f"    {label:<72}A {fmt(vals['A']):>6}  B {fmt(vals['B']):>6}")
    for c in CONFIGS:
        hit, timeouts, tasks = task_stats([r for r in results if r.config == c])
        print(
            f"  {c.key}: {tasks:.1f} workflow tasks per incident before its page;"
            f" {hit:.0f} % of incidents had a workflow task time out or fail first"
            f" ({timeouts:.2f} per incident)"
        )
    print(flush=True)
    return med


ADVICE = {
    "ingest": "more ingest capacity in front of Temporal (API processes behind the load"
    " balancer, each with its own connection to the frontend)",
    "task_wait": "more workflow-task capacity: worker processes (or workflow-task pollers"
    " and slots per worker) so that a burst of new incidents does not queue for their"
    " first task",
    "opening": "a cheaper opening task: the INC number is allocated under one lock for"
    " every incident, so openings queue on it; more workers do not shorten that part",
    "activity_wait": "more activity capacity for pages (activity pollers and slots, or a"
    " task queue of their own so that pages do not wait behind other activities)",
    "delivery": "faster delivery (the provider call and the ledger writes around it)",
}


def interpretation(
    results: list[RoundResult], med: dict[str, dict[str, float]], db_ms: dict[str, float]
) -> str:
    parts = []
    for config in CONFIGS:
        slow = {
            name: statistics.median(breakdown(r)[1][name] for r in results if r.config == config)
            for name, _ in SEGMENTS
        }
        total = sum(v for v in slow.values() if v == v)
        top = max(slow, key=lambda k: slow[k] if slow[k] == slow[k] else float("-inf"))
        label = dict(SEGMENTS)[top].split(":")[0]
        share = slow[top] / total * 100 if total else float("nan")
        m = med[config.key]
        parts.append(
            f"With {config.label}, the first page took p50 {fmt(m['POST→first page p50 s'])} s,"
            f" p99 {fmt(m['POST→first page p99 s'])} s, max {fmt(m['POST→first page max s'])} s"
            f" after the POST, while the API answered within p99 {fmt(m['POST→2xx p99 s'])} s;"
            f" for the slowest 1 % the largest part ({share:.0f} %, {fmt(slow[top])} s) was"
            f" '{dict(SEGMENTS)[top]}' ({label})."
        )
        hit, _, tasks = task_stats([r for r in results if r.config == config])
        parts.append(
            f"Before the page, its incidents took {tasks:.1f} workflow tasks on average and"
            f" {hit:.0f} % had a workflow task time out or fail (the incident's 2 s task"
            " timeout: under overload a task that misses it is done again)."
        )
        parts.append(f"For {config.key} the lever is {ADVICE[top]}.")
    a, b = med["A"], med["B"]
    p99 = b["POST→first page p99 s"] / a["POST→first page p99 s"]
    drain = b["all first pages drained s"] / a["all first pages drained s"]
    parts.append(
        f"Going from A to B changed the first page's p99 by {p99:.2f}× and the time to"
        f" page every incident by {drain:.2f}× on this 2-core machine, where both workers,"
        " both APIs, PostgreSQL, the dev server and this load generator share the same two"
        " cores: a second worker adds task slots and pollers but no CPU here (on hosts of"
        " their own, B has twice the CPU as well)."
    )
    lite, post = db_ms["SQLite"], db_ms["PostgreSQL"]
    parts.append(
        f"The store's writes for one incident took {lite:.2f} ms on SQLite and {post:.2f} ms"
        f" on PostgreSQL ({post / lite:.2f}×); for {len(results[0].samples)} incidents that"
        f" is {lite * len(results[0].samples) / 1000:.1f} s and"
        f" {post * len(results[0].samples) / 1000:.1f} s of database time if done one after"
        " another. On SQLite every write holds the database's one write lock; on PostgreSQL"
        " only the INC number's does (an advisory lock), the other writes run side by side."
    )
    return " ".join(parts)


# ---- main --------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000, help="distinct alerts per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each configuration")
    parser.add_argument(
        "--spread", type=float, default=1.0, help="seconds over which the alerts are due"
    )
    parser.add_argument(
        "--connections", type=int, default=100, help="keep-alive connections, all APIs together"
    )
    parser.add_argument("--mps", type=float, default=1000.0, help="FIREWATCH_TWILIO_MPS")
    parser.add_argument(
        "--drain-timeout", type=float, default=240.0, help="seconds to wait for the first pages"
    )
    parser.add_argument(
        "--db-incidents", type=int, default=300, help="incidents of the database cost runs"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200 alerts, 1 round, 100 DB incidents"
    )
    args = parser.parse_args()
    if args.quick:
        args.alerts, args.rounds, args.db_incidents = 200, 1, 100

    from tests.conftest import load_default_policy
    from tests.policies import write_policy
    from tests.postgres import PostgresServer

    print(machine_info(), flush=True)
    print(
        f"{args.alerts} distinct P1 alerts (PagerDuty /v2/enqueue, severity critical) due over"
        f" {args.spread:g} s, {args.connections} connections; {args.rounds} round(s) each of"
        f" {' and '.join(c.label for c in CONFIGS)}, alternating; FIREWATCH_TWILIO_MPS="
        f"{args.mps:g}; the shipped policy without runbook checks; Slack off",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fw-scale-") as tmp, PostgresServer() as pg:
        work = Path(tmp)
        print(f"PostgreSQL {pg.bindir.parent.name} up in {pg.started_in_s:.1f} s", flush=True)
        policy = write_policy(load_default_policy(), work / "policy.yaml")
        db_ms = bench_db(pg, work, args.db_incidents, max(1, args.rounds))
        env = await start_dev_server()
        results: list[RoundResult] = []
        try:
            print(flush=True)
            for round_no in range(1, args.rounds + 1):
                for config in CONFIGS:
                    result = await run_round(env.client, config, round_no, args, pg, policy, work)
                    results.append(result)
                    print_round(result)
        finally:
            await env.shutdown()
    med = print_summary(results)
    print(interpretation(results, med, db_ms))
    complete = all(
        len(r.accepted) == len(r.samples)
        and all(s.paged is not None for s in r.accepted)
        and not r.duplicates
        for r in results
    )
    print(f"every alert accepted, every incident paged exactly once: {'yes' if complete else 'NO'}")
    return 0 if complete else 1


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # Skip interpreter finalisation: the Temporal bridge's threads can still call into Python
    # while it tears down ("PyGILState_Release ... finalizing"), after the report is out.
    os._exit(code)
