"""The Firewatch HTTP API: alert ingress for monitoring tools, and the incidents API.

    uvicorn starter.api.app:app --host 127.0.0.1 --port 8000

``create_app`` builds one with a given Temporal client, policy and data dir (tests, the
benchmark); the module-level ``app`` reads them from the environment like the worker.
Temporal is dialled lazily, so the API starts (and answers 503) while Temporal is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from temporalio.client import Client

from activities.channels.slack import close_shared_sessions
from activities.config import PolicyStore, data_dir, policy_store_from_env
from activities.settings import ApiSettings, get_settings
from domain.policy import Policy
from starter.api import (
    changes,
    documents,
    followup,
    handoffs,
    health,
    heartbeats,
    incidents,
    ingest_alertmanager,
    ingest_generic,
    ingest_pagerduty,
    integrations,
    maintenance,
    metrics,
    postmortems,
    reports,
    schedules,
    slack,
    twilio,
    whatif,
)
from starter.api.context import ApiContext, TemporalGate
from starter.api.errors import check_query, install_error_handlers
from starter.api.fast_lane import FastLane
from starter.api.incident_metrics import IncidentFacts
from starter.api.limits import BodyLimit, InFlightLimit
from starter.api.metrics import ApiMetrics, MetricsMiddleware

log = logging.getLogger(__name__)

DESCRIPTION = """
Alert ingress that Prometheus Alertmanager, Grafana and PagerDuty Events API v2 clients
can point at without glue code, and the incidents API used by the `firewatch` CLI.

Every 2xx from an ingest endpoint means Temporal has durably recorded the alert. When
Temporal is unreachable the API answers 503 with Retry-After, and senders retry; retries
never open a second incident or page again.

Keys: `firewatch integrations --show-secrets`. API token: the one `make up` generated into
Firewatch's database and printed (or `FIREWATCH_API_TOKEN`).
"""


def create_app(
    *,
    client: Client | None = None,
    policy: Policy | PolicyStore | None = None,
    data: Path | None = None,
    settings: ApiSettings | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    if isinstance(policy, Policy):
        policy = PolicyStore(policy=policy)
    ctx = ApiContext(
        settings=settings,
        gate=TemporalGate(client, settings),
        policy=policy or policy_store_from_env(),
        data_dir=(data or data_dir()).resolve(),
        metrics=ApiMetrics(),
    )
    # Incidents, time to ack and resolve, pages: read from the database at scrape time.
    ctx.metrics.registry.register(IncidentFacts(lambda: ctx.store().database))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Keys exist and the database is migrated before the first request; Temporal is not
        # dialled here on purpose.
        ctx.secrets()
        await asyncio.to_thread(ctx.store)
        log.info("Firewatch API: data dir %s, task queue %s", ctx.data_dir, settings.task_queue)
        yield
        await close_shared_sessions()  # Slack replies' HTTP connections

    app = FastAPI(
        title="Firewatch",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(check_query)],
        # Firewatch exports its own Prometheus metrics (/metrics). FastAPI's OpenTelemetry
        # hooks would look up the global providers on every request to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    # The report pages (the API token or the link's), before the JSON routes that would
    # take "2026-11.html" for a month.
    app.include_router(reports.pages)
    for module in (
        ingest_pagerduty,
        ingest_alertmanager,
        ingest_generic,
        changes,
        incidents,
        documents,
        integrations,
        heartbeats,
        schedules,
        maintenance,
        postmortems,
        followup,
        reports,
        whatif,
        handoffs,
        health,
        metrics,
        slack,
        twilio,
    ):
        app.include_router(module.router)
    app.include_router(schedules.feeds)  # the calendar feeds: a token in the URL instead
    # Added innermost first: metrics see every answer, including the limits' refusals.
    app.add_middleware(
        FastLane,
        ctx=ctx,
        routes=[ingest_pagerduty.FAST_LANE, ingest_generic.FAST_LANE],
        exception_handlers=app.exception_handlers,
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(
        InFlightLimit, limit=settings.max_in_flight, retry_after_s=settings.retry_after_s
    )
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    return app


app = create_app()
