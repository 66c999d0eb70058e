"""The two Firewatch deployments the A/B benchmarks compare, and what a stored incident costs.

A) one ``python worker.py`` (and, for the benchmarks that POST alerts, one API process)
   on the embedded SQLite file in its data dir (``FIREWATCH_DATABASE_URL`` unset);
B) two worker processes (and two API processes), each with a data dir of its own, on one
   PostgreSQL database (``FIREWATCH_DATABASE_URL``) of a throw-away server
   (``tests.postgres.PostgresServer``).

``deployment()`` starts one configuration on a fresh task queue and a fresh database, as
``tests/dev/cluster.py`` starts its processes, and ends it: processes stopped, whatever
still runs on the queue terminated, the database dropped. ``bench_db()`` measures the
database time the writes of one opened and paged incident take on each back end.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.measure import run_many
from tests.dev.cluster import Cluster


@dataclass(frozen=True)
class Config:
    key: str  # "A" or "B"
    hosts: int  # worker processes, and as many API processes (when ``apis``)
    postgres: bool
    apis: bool = True

    @property
    def label(self) -> str:
        db = "PostgreSQL" if self.postgres else "SQLite"
        many = "s" if self.hosts > 1 else ""
        apis = f" + {self.hosts} API{many}" if self.apis else ""
        return f"{self.key}: {self.hosts} worker{many}{apis}, {db}"


CONFIGS = (Config("A", 1, postgres=False), Config("B", 2, postgres=True))
# The same two without API processes: for load sent to Temporal by this process.
WORKER_CONFIGS = tuple(Config(c.key, c.hosts, c.postgres, apis=False) for c in CONFIGS)


class BenchCluster(Cluster):
    """``tests.dev.cluster.Cluster``; an empty ``database_url`` leaves each host on the
    SQLite file in its data dir (a worker and an API on one host share it)."""

    def env(self, host: str) -> dict[str, str]:
        env = super().env(host)
        if not self.database_url:
            del env["FIREWATCH_DATABASE_URL"]
        return env


@dataclass(frozen=True)
class AB:
    """What every A/B run shares: the PostgreSQL server (a ``tests.postgres.PostgresServer``)
    and the policy file the processes load (``FIREWATCH_POLICY``)."""

    pg: Any
    policy: Path


@dataclass
class Deployment:
    """One configuration's running processes (see ``deployment()``)."""

    config: Config
    cluster: BenchCluster
    hosts: list[str]
    database_url: str  # the PostgreSQL URL, or the first host's SQLite file
    urls: list[str] = field(default_factory=list)  # the APIs' base URLs
    setup_s: float = 0.0
    workflow_ids: list[str] = field(default_factory=list)  # terminated at the end

    def data(self, host: int = 0) -> Path:
        return self.cluster.tmp / self.hosts[host] / "data"

    def pagerduty_key(self) -> str:
        """The routing key of the policy's PagerDuty integration, as the APIs know it."""
        from activities.config import PolicyStore
        from starter.secrets import ensure_secrets
        from storage.database import Database

        secrets = ensure_secrets(
            self.data(),
            PolicyStore(self.cluster.policy).get(),
            database=Database.open(self.database_url),
        )
        key = secrets.for_integration("pagerduty")
        assert key is not None, "the policy has a pagerduty integration"
        return key.key


async def terminate_round(client: Any, workflow_ids: list[str], queue: str) -> int:
    """End the round's incidents: the known ids, then whatever still runs on the queue."""

    async def end(workflow_id: str) -> str:
        try:
            await client.get_workflow_handle(workflow_id).terminate("benchmark round over")
        except Exception as err:  # already ended
            return type(err).__name__
        return "ok"

    await run_many("terminate", len(workflow_ids), 50, lambda i: end(workflow_ids[i]))
    await asyncio.sleep(1)  # visibility lags a moment
    rest = [
        wf.id
        async for wf in client.list_workflows(
            f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
        )
    ]
    await asyncio.gather(*(end(i) for i in rest))
    return len(rest)


@contextlib.asynccontextmanager
async def deployment(
    client: Any,
    config: Config,
    pg: Any,
    policy: Path,
    work: Path,
    queue: str,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Deployment]:
    """``config``'s workers (and APIs) polling ``queue``, data dirs under ``work``, on a
    fresh database; on the way out the processes stop, then ``workflow_ids`` and whatever
    else still runs on ``queue`` are terminated and the database is dropped."""
    from storage.database import sqlite_url

    name = f"bench_{uuid.uuid4().hex[:10]}"
    database = pg.create_database(name, migrated=True) if config.postgres else ""
    cluster = BenchCluster(client, work, policy, queue, database, extra_env or {})
    hosts = [f"host-{'ab'[h]}" for h in range(config.hosts)]
    url = database or sqlite_url(work / hosts[0] / "data")
    running = Deployment(config, cluster, hosts, url)
    try:
        began = time.monotonic()
        await asyncio.gather(*(cluster.start_worker(h) for h in hosts))
        if config.apis:
            running.urls = list(await asyncio.gather(*(cluster.start_api(h) for h in hosts)))
        running.setup_s = time.monotonic() - began
        yield running
    finally:
        cluster.close()
        leftover = await terminate_round(client, running.workflow_ids, queue)
        if leftover:
            print(f"  (terminated {leftover} more workflows found on {queue})", flush=True)
        if database:
            pg.drop_database(name)


@dataclass
class ABRun:
    """What ``ab_environment()`` set up for one A/B benchmark run."""

    ab: AB
    work: Path  # a temporary dir, removed at the end
    db_ms: dict[str, float]  # ``bench_db``'s medians; empty when it did not run
    env: Any  # the dev server (``temporalio.testing.WorkflowEnvironment``)


@contextlib.asynccontextmanager
async def ab_environment(policy: Any, db_incidents: int, rounds: int) -> AsyncIterator[ABRun]:
    """A temp dir, a throw-away PostgreSQL server, ``policy`` (a ``domain.policy.Policy``)
    as the processes' policy file, the store's cost per incident (``bench_db``, skipped for
    ``db_incidents`` 0, before anything else runs) and a fresh dev server."""
    import tempfile

    from benchmarks.measure import start_dev_server
    from tests.policies import write_policy
    from tests.postgres import PostgresServer

    with tempfile.TemporaryDirectory(prefix="fw-ab-") as tmp, PostgresServer() as pg:
        work = Path(tmp)
        print(f"PostgreSQL {pg.bindir.parent.name} up in {pg.started_in_s:.1f} s", flush=True)
        ab = AB(pg, write_policy(policy, work / "policy.yaml"))
        db_ms = bench_db(pg, work, db_incidents, max(1, rounds)) if db_incidents else {}
        env = await start_dev_server()
        try:
            yield ABRun(ab, work, db_ms, env)
        finally:
            await env.shutdown()


def in_turn(configs: tuple[Config, ...], round_no: int) -> tuple[Config, ...]:
    """The configurations in round ``round_no``'s order: swapped every other round."""
    return configs if round_no % 2 else configs[::-1]


# ---- the database's cost per incident ----------------------------------------------------------


def db_cost(url: str, incidents: int) -> dict[str, float]:
    """Milliseconds per incident of each write an opened, paged incident makes."""
    from domain.ids import format_incident_id
    from storage.database import Database
    from storage.documents import Documents
    from storage.ledger import Ledger
    from storage.store import Store

    db = Database.open(url)
    store, ledger, documents = Store(db), Ledger(db), Documents(db)
    tag = uuid.uuid4().hex[:6]
    spent: dict[str, float] = defaultdict(float)
    ticket = "# Ticket\n\n" + "A line of the incident ticket, as the template writes it.\n" * 40
    for i in range(incidents):
        workflow_id = f"incident/pagerduty/db-{tag}-{i}"
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        number = store.allocate_incident_number(
            now.date(),
            f"{workflow_id}#run",
            opened_at=now,
            summary=f"Shared dependency down: check {i} failing",
            service="api",
            severity="P1",
        )
        t1 = time.perf_counter()
        incident_id = format_incident_id(now.date(), number)
        key = f"{workflow_id}/page/L1/alice/sms"
        ledger.begin(key, incident_id=incident_id, channel="sms", address="+15550100001")
        t2 = time.perf_counter()
        ledger.finish(key, "sent", provider_id=f"SM{uuid.uuid4().hex}")
        t3 = time.perf_counter()
        store.record_notification(
            {
                "idempotency_key": key,
                "incident_id": incident_id,
                "workflow_id": workflow_id,
                "kind": "page",
                "recipient": "alice",
                "channel": "sms",
                "subject": f"[P1] {incident_id}",
                "text": f"{incident_id}: Shared dependency down. Reply ACK to acknowledge.",
                "scheduled_at": now.isoformat(),
                "recorded_at": now.isoformat(),
                "status": "sent",
                "detail": "+15550100001",
            }
        )
        t4 = time.perf_counter()
        documents.save("ticket", incident_id, 1, ticket)
        t5 = time.perf_counter()
        for name, seconds in (
            ("INC number", t1 - t0),
            ("ledger begin", t2 - t1),
            ("ledger finish", t3 - t2),
            ("outbox row", t4 - t3),
            ("ticket save", t5 - t4),
        ):
            spent[name] += seconds
    db.close()
    per = {name: seconds / incidents * 1000 for name, seconds in spent.items()}
    per["total"] = sum(per.values())
    return per


def bench_db(pg: Any, work: Path, incidents: int, rounds: int) -> dict[str, float]:
    """Prints the table; returns the median total ms per incident of each back end."""
    from storage.database import sqlite_url

    print(
        f"\nDatabase time per incident: {incidents} incidents' writes (INC number, ledger"
        " begin + finish, outbox row, ticket save), serially in this process, fresh database"
        " each run, alternating",
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {"SQLite": [], "PostgreSQL": []}
    for r in range(rounds):
        for name in ("SQLite", "PostgreSQL"):
            if name == "SQLite":
                url = sqlite_url(work / f"dbcost-{r}")
            else:
                url = pg.create_database(f"dbcost_{r}", migrated=True)
            # A few writes first: connections opened, statements compiled.
            db_cost(url, 10)
            runs[name].append(db_cost(url, incidents))
            if name == "PostgreSQL":
                pg.drop_database(f"dbcost_{r}")
    parts = list(runs["SQLite"][0])
    print(
        f"  {'ms per incident (median of runs)':<34}{'SQLite':>9}{'PostgreSQL':>12}"
        f"{'PG/SQLite':>11}"
    )
    for part in parts:
        lite = statistics.median(run[part] for run in runs["SQLite"])
        post = statistics.median(run[part] for run in runs["PostgreSQL"])
        print(f"  {part:<34}{lite:>9.2f}{post:>12.2f}{post / lite:>10.2f}×")
    totals = {name: [f"{run['total']:.2f}" for run in rs] for name, rs in runs.items()}
    print(
        f"  totals per run: SQLite {', '.join(totals['SQLite'])} ms;"
        f" PostgreSQL {', '.join(totals['PostgreSQL'])} ms"
    )
    print(
        "  (SQLite: WAL, synchronous FULL, on this machine's ext4 disk. The throw-away"
        " PostgreSQL runs with fsync, synchronous_commit and full_page_writes off, over"
        " loopback TCP: a production server commits durably, so its cost is higher.)",
        flush=True,
    )
    return {name: statistics.median(run["total"] for run in rs) for name, rs in runs.items()}


# ---- the A/B summary ---------------------------------------------------------------------------


def print_ab_summary(
    rates: dict[str, list[float]], unit: str, configs: tuple[Config, ...] = CONFIGS
) -> None:
    """Per round and median: the rates of ``bare``, ``A`` and ``B``; A/bare, B/bare, B/A."""
    print(f"\nsummary: {unit} per round; median over rounds")
    for key, values in rates.items():
        label = {c.key: c.label for c in configs}.get(key, "bare Temporal")
        print(
            f"  {key:<7}{', '.join(f'{v:.1f}' for v in values):<38}"
            f" median {statistics.median(values):8.1f}   ({label})"
        )
    for num, den in (("A", "bare"), ("B", "bare"), ("B", "A")):
        ratios = [n / d for n, d in zip(rates[num], rates[den], strict=True)]
        print(
            f"  {f'{num}/{den}':<7}{', '.join(f'{x:.2f}×' for x in ratios):<38}"
            f" median {statistics.median(ratios):7.2f}×"
        )
    print(flush=True)


def print_store_cost(db_ms: dict[str, float], rates: dict[str, list[float]] | None = None) -> None:
    """The store's cost per incident (``bench_db``'s medians); with ``rates`` (incidents per
    second of A and B) also as a share of the wall time per incident at their median rate."""
    lite, post = db_ms["SQLite"], db_ms["PostgreSQL"]
    print(
        f"store cost per incident (the database writes of one opened, paged incident, serially):"
        f" SQLite {lite:.2f} ms, PostgreSQL {post:.2f} ms; PostgreSQL/SQLite {post / lite:.2f}×"
    )
    for key, ms in (("A", lite), ("B", post)):
        if rates is None:
            break
        rate = statistics.median(rates[key])
        print(
            f"  {key}: {ms:.2f} ms of the {1000 / rate:.1f} ms per incident at its median rate"
            f" ({rate:.1f}/s): {ms * rate / 10:.1f} % of the wall time"
        )
    print(flush=True)
