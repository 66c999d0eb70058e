"""The Firewatch worker: runs incident and post-mortem workflows and their activities.

python worker.py          # uses TEMPORAL_ADDRESS / profile / 127.0.0.1:7233

Settings (task queue, data dir, policy, channels, sandbox, cache size) come from
``activities.settings``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels.settings import ChannelSettings, settings_from_env
from activities.channels.slack import close_shared_sessions
from activities.channels.slack_incident_message import SlackActivities
from activities.config import PolicyStore, data_dir, policy_store_from_env
from activities.documents import DocumentActivities
from activities.followup import FollowUpActivities
from activities.handoff import HandoffActivities
from activities.heartbeats import HeartbeatActivities
from activities.incident_ids import IncidentIdActivities
from activities.maintenance import MaintenanceActivities
from activities.notify import NotifyActivities
from activities.opening import OpeningActivities
from activities.people import OncallActivities, next_business_day, postmortem_review_slot
from activities.policy import PolicyActivities
from activities.postmortems import PostmortemActivities
from activities.publish import PublishActivities
from activities.reports import MonthlyReportActivities
from activities.runbooks import RunbookActivities
from activities.settings import DEFAULT_TASK_QUEUE, SettingsError, get_settings
from activities.store import Store
from activities.tickets import TicketActivities
from domain.policy_file import PolicyError
from domain.postmortem_texts import TEMPLATES as POSTMORTEM_TEMPLATES
from domain.templates import compile_templates
from storage.maintenance import MaintenanceWindows
from storage.records import IncidentRecords
from storage.schedules import Schedules
from workflows.followup import WeeklyFollowUpWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWindowWorkflow
from workflows.monthly_report import MonthlyReportWorkflow
from workflows.postmortem import PostMortemWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.test_page import TestPageWorkflow
from workflows.ticket import ClosedTicketWorkflow

TASK_QUEUE = DEFAULT_TASK_QUEUE
ACTIVITY_THREADS = 32
WORKFLOWS = [
    IncidentWorkflow,
    PostMortemWorkflow,
    RunbookWorkflow,
    HeartbeatWorkflow,
    MaintenanceWindowWorkflow,
    HandoffWorkflow,
    TestPageWorkflow,
    WeeklyFollowUpWorkflow,
    ClosedTicketWorkflow,
    MonthlyReportWorkflow,
]
# Our pure domain code and the libraries it renders with are deterministic; passing them
# through keeps one copy in memory instead of re-importing them per workflow run.
SANDBOXED_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "domain", "activities", "jinja2", "markupsafe", "yaml", "pydantic", "pydantic_core"
    )
)


def workflow_runner() -> WorkflowRunner:
    """The sandbox re-imports the workflow modules for every run and proxies every payload
    conversion: it more than doubles the worker's CPU per incident. It is a development-time
    check, so the test suite runs every workflow in it (FIREWATCH_WORKFLOW_SANDBOX=1, set by
    tests/conftest.py) and the replay tests guard determinism; production runs without it
    unless FIREWATCH_WORKFLOW_SANDBOX=1.
    """
    if get_settings().workflow_sandbox:
        return SANDBOXED_RUNNER
    return UnsandboxedWorkflowRunner()


# Notifications to people (pages, reminders, DMs) run on a task queue of their own, with
# their own slots: a channel that hangs (Slack timing out on every #incidents post and
# message sync) can take every slot of the main queue, never those of the pages.
PAGE_SLOTS = 200


# A workflow's tasks go to the worker that ran it last (its "sticky" queue, with the run
# cached). If that worker has died they wait this long before any worker may take them
# (and replay the history): the SDK's default of 10 s would make every page whose
# incident lived on a killed host 10 s late. A busy but live worker rarely leaves a task
# queued this long; when it does, the cost is one replay, not a late page.
STICKY_TIMEOUT = timedelta(seconds=1)

# Workflow tasks this worker takes at once (the SDK's default is 100). Python runs them one
# at a time; a task taken waits in here, with its start-to-close clock running (2 s for
# incidents, starter.incidents.INCIDENT_TASK_TIMEOUT), while one not taken yet waits in
# Temporal, where another worker can have it. Measured with 400 P1s on 10 s windows on 2
# cores: 100 slots, 215 tasks timed out and pages p99 54 s; 10 slots, none, p99 9 s.
WORKFLOW_SLOTS = 10


# Runbook checks, their child workflows and mitigation actions run on a queue of their own
# too, with bounded slots: a burst of incidents opening (each starts its diagnostics) cannot
# take the activity slots the incidents' own steps (tickets, Slack) need.
RUNBOOK_SLOTS = 40


def runbooks_queue(task_queue: str) -> str:
    """The task queue of diagnostics runs and mitigations of incidents on ``task_queue``."""
    return f"{task_queue}-runbooks"


def pages_queue(task_queue: str) -> str:
    """The task queue of the notifications to people of incidents on ``task_queue``."""
    return f"{task_queue}-pages"


class FirewatchWorker:
    """The main worker (incidents and everything else), the pages worker and the runbooks
    worker, run together."""

    def __init__(self, main: Worker, pages: Worker, runbooks: Worker) -> None:
        self.main = main
        self.pages = pages
        self.runbooks = runbooks

    async def __aenter__(self) -> FirewatchWorker:
        await self.pages.__aenter__()
        await self.runbooks.__aenter__()
        await self.main.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.main.__aexit__(*exc)
        finally:
            try:
                await self.runbooks.__aexit__(*exc)
            finally:
                await self.pages.__aexit__(*exc)


def build_worker(
    client: Client,
    *,
    policy: PolicyStore,
    data: Path,
    task_queue: str = TASK_QUEUE,
    executor: ThreadPoolExecutor | None = None,  # give it ACTIVITY_THREADS threads
    max_cached_workflows: int | None = None,
    channels: ChannelSettings | None = None,
) -> FirewatchWorker:
    store = Store(data)
    channels = channels if channels is not None else settings_from_env()  # FIREWATCH_* env
    slack = SlackActivities(store, channels)
    policies = PolicyActivities(policy)
    ids = IncidentIdActivities(store)
    notify = NotifyActivities(store, channels)
    documents = DocumentActivities(data, IncidentRecords(store.database))
    oncall = OncallActivities(Schedules(store.database))
    activities: list[Callable[..., Any]] = [
        OpeningActivities(policies, ids, channels, oncall).open_incident,
        PublishActivities(notify, documents).publish_locally,
        notify.deliver_notification,
        MaintenanceActivities(policies, notify).announce,
        slack.sync_incident_message,
        documents.write_document,
        oncall.resolve_oncall,
        next_business_day,
        postmortem_review_slot,
        PostmortemActivities(store.database).record_postmortem,
    ]
    # Opens incidents on task_queue; a miss in its service's maintenance window pages nobody.
    heartbeats = HeartbeatActivities(client, task_queue, policy, MaintenanceWindows(store.database))
    activities += [heartbeats.open_heartbeat_incident, heartbeats.resolve_heartbeat_incident]
    handoff = HandoffActivities(client, policy, store, oncall)  # the weekly handoff
    activities += [handoff.gather, handoff.next_handoff, handoff.record]
    followup = FollowUpActivities(client, store.database, policies, notify)  # weekly digest
    activities += [followup.gather, followup.send]
    tickets = TicketActivities(client, store.database, documents, policies)  # closed incidents
    activities.append(tickets.rewrite_closed_ticket)
    activities.append(MonthlyReportActivities(store.database, policies, notify).send)
    pool = executor or ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)
    pages = Worker(
        client,
        task_queue=pages_queue(task_queue),
        activities=[notify.deliver_notification],  # async: no thread held while waiting
        max_concurrent_activities=PAGE_SLOTS,
    )
    runbooks = Worker(
        client,
        task_queue=runbooks_queue(task_queue),
        workflows=[RunbookWorkflow],
        activities=RunbookActivities(store, get_settings()).activities,  # async
        workflow_runner=workflow_runner(),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_concurrent_activities=RUNBOOK_SLOTS,
    )
    main = Worker(
        client,
        task_queue=task_queue,
        workflows=[w for w in WORKFLOWS if w is not RunbookWorkflow],
        activities=activities,
        workflow_runner=workflow_runner(),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        activity_executor=pool,
        max_concurrent_workflow_tasks=WORKFLOW_SLOTS,
        # Never accept more activities than threads to run them: queued ones time out.
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_local_activities=ACTIVITY_THREADS,
        # Sleeping incidents live in Temporal, not in memory: a bounded cache keeps RSS flat
        # (about 300 KiB per cached incident); evicted ones are replayed when a timer fires.
        max_cached_workflows=max_cached_workflows
        if max_cached_workflows is not None
        else get_settings().max_cached_workflows,
    )
    return FirewatchWorker(main, pages, runbooks)


async def _ensure_schedules(client: Client, policy: PolicyStore, queue: str) -> None:
    """The periodic jobs' Temporal Schedules, from the policy (created or updated): the
    weekly handoff per rotation, the weekly follow-up and the monthly report."""
    from starter import followup_schedule, report_schedule
    from starter.handoff_schedules import ensure_handoff_schedules

    try:
        made = await ensure_handoff_schedules(client, policy.get(), queue)
        if await followup_schedule.ensure_followup_schedule(client, policy.get(), queue):
            made.append(followup_schedule.SCHEDULE_ID)
        if await report_schedule.ensure_report_schedule(client, policy.get(), queue):
            made.append(report_schedule.SCHEDULE_ID)
    except Exception:  # the worker runs incidents whatever happens to the schedules
        logging.exception("could not create the schedules")
        return
    logging.info("schedules: %s", ", ".join(made) or "none (switched off in the policy)")


async def _backfill_records(client: Client, policy: PolicyStore, data: Path) -> None:
    """Records for incidents older than the records table, once (in the background)."""
    from starter.records_backfill import backfill_records

    try:
        await backfill_records(client, Store(data).database, policy.get())
    except Exception:  # reports miss old incidents; paging is unaffected
        logging.exception("could not back-fill the incident records")


# Young collections every 50,000 allocations (Python's default: 700).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Fewer passes of Python's cyclic collector over the cached incidents.

    A worker keeps thousands of sleeping incidents in memory (``max_cached_workflows``) and
    every full collection walks them all: 9 % of the worker's CPU in a storm of 1,000 P1s
    (perf). What startup loaded is frozen out of the collector, and young collections run
    less often (``GC_THRESHOLDS``): the collector's share fell from 4.6 % to 0.8 % and the
    worker's CPU by 7 % (600 P1s at 5/s, README "Benchmarks")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from starter.connection import connect

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"firewatch worker: invalid setting: {exc}", file=sys.stderr)
        return 2
    try:
        policy = policy_store_from_env()
    except PolicyError as exc:
        print(f"firewatch worker: invalid policy: {exc}", file=sys.stderr)
        return 2
    runtime = None
    if settings.worker_metrics_address:  # the SDK's Prometheus endpoint, for autoscaling
        from starter.worker_metrics import MetricsEndpointError, metrics_runtime

        try:
            runtime = metrics_runtime(settings.worker_metrics_address)
        except MetricsEndpointError as exc:
            print(f"firewatch worker: {exc}", file=sys.stderr)
            return 2
        logging.info("Temporal metrics on http://%s/metrics", settings.worker_metrics_address)
    from starter.connection import TemporalConfigError, connect_kwargs, describe_connection

    try:
        logging.info("Temporal: %s", describe_connection(connect_kwargs()))  # no secrets
        client = await connect(runtime=runtime)
    except TemporalConfigError as exc:
        print(f"firewatch worker: {exc}", file=sys.stderr)
        return 2
    # Async activities hand blocking calls (database writes, the Twilio client) to the
    # loop's default executor; its default size (cores + 4) would queue a burst of pages.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
    queue = settings.task_queue
    # A replacement worker takes over tasks the moment it polls; compiling the message
    # templates first keeps its first tasks (often overdue pages) fast.
    compile_templates(POSTMORTEM_TEMPLATES)
    tune_garbage_collector()
    worker = build_worker(client, policy=policy, data=data_dir(), task_queue=queue)
    await _ensure_schedules(client, policy, queue)
    backfill = asyncio.create_task(_backfill_records(client, policy, data_dir()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info("worker polling task queue %r with policy %s", queue, policy.source)
    logging.info("delivery %s", settings.describe())
    async with worker:
        await stop.wait()
    backfill.cancel()
    await close_shared_sessions()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
