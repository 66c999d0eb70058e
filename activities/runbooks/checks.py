"""Runbook checks as activities: one executor per kind, each small and tested on its own.

``RunbookActivities(store, settings)`` holds what they need; its ``run_check`` and
``run_mitigation`` methods are the activities (``RunbookActivities.activities`` lists them
for the worker). A check never raises for what it finds: an unreachable host, a timeout, a
command that is not allowed are results with outcome ``error``. Checks only read, so a
retried activity is harmless. They heartbeat every few seconds while running, and a
cancellation stops them (a command is killed).

Each result's ``summary`` is short, for the digest line pages carry (``health 503 · db ok
(database: up) · deploys v412 by alice 12m ago · sentry degraded: API``); ``value`` holds
the detail (the JSON value, the degraded components, the series, the changes, the output).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio import activity

from activities.runbooks.common import (
    MissingEnv,
    elapsed,
    env_headers,
    fetch,
    heartbeating,
    http_failure,
    number,
    one_line,
    run_argv,
    span,
)
from activities.runbooks.mitigations import MitigationActivities
from activities.runbooks.models import RunCheck
from activities.settings import RunbookSettings, env_var
from domain.durations import format_duration
from domain.runbooks import (
    ChangesCheck,
    Check,
    CheckResult,
    CommandCheck,
    HttpCheck,
    ManualCheck,
    Outcome,
    PrometheusCheck,
    StatusPageCheck,
)
from storage.store import Store

log = logging.getLogger(__name__)

SUMMARY_CHARS = 500  # CheckResult.summary's limit; the texts below stay far shorter
VALUE_CHARS = 2000  # CheckResult.value's limit
SHORT_VALUE_CHARS = 60  # a JSON value inside a summary
CHANGE_SUMMARY_CHARS = 40  # a change's summary inside a summary
CHANGES_LISTED = 5
SERIES_LISTED = 20
NAMES_LISTED = 4  # degraded components named in a summary

COMMANDS_NOT_ALLOWED = f"commands are not allowed on this worker ({env_var('runbook_commands')})"
NO_PROMETHEUS = "no Prometheus configured"


def result(
    check: Check,
    outcome: Outcome,
    summary: str,
    *,
    value: str | None = None,
    seconds: float | None = None,
    started_at: datetime | None = None,
) -> CheckResult:
    return CheckResult(
        name=check.name,
        kind=check.kind,
        outcome=outcome,
        summary=one_line(summary, SUMMARY_CHARS),
        value=_cut(value, VALUE_CHARS) if value else None,
        latency_ms=round(seconds * 1000) if seconds is not None else None,
        started_at=started_at or datetime.now(UTC),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _client(check: Check, *, follow_redirects: bool = False) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=check.timeout.total_seconds(), follow_redirects=follow_redirects
    )


# ---- http -----------------------------------------------------------------------------------


async def run_http(check: HttpCheck, environ: Mapping[str, str] | None = None) -> CheckResult:
    """``curl -f URL``: the status (one of ``expect_status``), the latency (at most
    ``max_latency``), and the value at ``json_path``, reported."""
    started_at = datetime.now(UTC)
    try:
        headers = env_headers(check.headers_from_env, environ)
    except MissingEnv as missing:
        return result(check, Outcome.ERROR, str(missing), started_at=started_at)
    try:
        async with asyncio.timeout(check.timeout.total_seconds()), _client(check) as client:
            answer = await fetch(client, check.method, check.url, headers=headers)
    except (TimeoutError, httpx.HTTPError) as exc:
        return result(
            check, Outcome.ERROR, http_failure(exc, check.url, check.timeout), started_at=started_at
        )
    seconds = answer.seconds

    def done(outcome: Outcome, summary: str, value: str | None = None) -> CheckResult:
        return result(check, outcome, summary, value=value, seconds=seconds, started_at=started_at)

    if answer.status not in check.expect_status:
        return done(Outcome.FAILED, str(answer.status), one_line(answer.text, 500) or None)
    found: str | None = None
    value: str | None = None
    if check.json_path is not None:
        try:
            document = answer.json()
        except ValueError:
            return done(Outcome.FAILED, f"{answer.status}, not JSON", one_line(answer.text, 500))
        absent = object()
        picked = json_value(document, check.json_path, absent)
        if picked is absent:
            return done(Outcome.FAILED, f"no {check.json_path} in the answer")
        found = f"{json_label(check.json_path)}: {short_value(picked)}"
        value = picked if isinstance(picked, str) else json.dumps(picked, sort_keys=True)
        if check.expect_value is not None and short_value(picked) != check.expect_value:
            return done(Outcome.FAILED, f"{found}, not {check.expect_value}", value)
    if check.max_latency is not None and seconds > check.max_latency.total_seconds():
        return done(Outcome.FAILED, f"slow {elapsed(seconds)} > {span(check.max_latency)}", value)
    return done(Outcome.OK, f"ok ({found})" if found else f"ok {elapsed(seconds)}", value)


def json_value(document: Any, path: str, missing: Any = None) -> Any:
    """``database.status`` in ``document`` (list items by number), or ``missing``."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return missing
    return current


def json_label(path: str) -> str:
    """How a JSON path is named in a summary: ``database`` for ``database.status`` too."""
    return path.removesuffix(".status") or path


def short_value(value: Any) -> str:
    """A JSON value in a few characters: ``up`` for ``"up"`` or ``{"status": "up", ...}``."""
    if isinstance(value, dict) and isinstance(value.get("status"), str | int | float | bool):
        value = value["status"]
    if isinstance(value, str):
        return one_line(value, SHORT_VALUE_CHARS)
    return one_line(json.dumps(value, sort_keys=True), SHORT_VALUE_CHARS)


# ---- status_page ------------------------------------------------------------------------------

INDICATOR_WORDS = {
    "minor": "degraded",
    "major": "major outage",
    "critical": "critical outage",
    "maintenance": "maintenance",
}


async def run_status_page(check: StatusPageCheck) -> CheckResult:
    """An Atlassian Statuspage: the indicator (``none`` → ok) and the components that are not
    ``operational``."""
    started_at = datetime.now(UTC)
    base = check.url.rstrip("/")
    status_url, components_url = f"{base}/api/v2/status.json", f"{base}/api/v2/components.json"
    try:
        async with (
            asyncio.timeout(check.timeout.total_seconds()),
            _client(check, follow_redirects=True) as client,
        ):
            status, components = await asyncio.gather(
                fetch(client, "GET", status_url),
                fetch(client, "GET", components_url),
                return_exceptions=True,
            )
    except (TimeoutError, httpx.HTTPError) as exc:
        return result(
            check, Outcome.ERROR, http_failure(exc, check.url, check.timeout), started_at=started_at
        )
    if isinstance(status, BaseException):
        if not isinstance(status, TimeoutError | httpx.HTTPError):
            raise status
        summary = http_failure(status, check.url, check.timeout)
        return result(check, Outcome.ERROR, summary, started_at=started_at)
    if status.status != 200:
        summary = f"status page answered {status.status}"
        return result(check, Outcome.ERROR, summary, seconds=status.seconds, started_at=started_at)
    try:
        page = status.json()["status"]
        indicator = str(page["indicator"])
        description = str(page.get("description") or "")
    except (ValueError, KeyError, TypeError):
        return result(
            check,
            Outcome.ERROR,
            "not a Statuspage status.json",
            seconds=status.seconds,
            started_at=started_at,
        )
    troubled: list[tuple[str, str]] = []
    if not isinstance(components, BaseException) and components.status == 200:
        with contextlib.suppress(ValueError):  # the indicator alone, then
            troubled = not_operational(components.json())
    names = [name for name, _ in troubled]
    named = ", ".join(names[:NAMES_LISTED]) + (
        f" +{len(names) - NAMES_LISTED}" if len(names) > NAMES_LISTED else ""
    )
    lines = [f"{indicator}: {description}" if description else indicator]
    lines += [f"{name}: {state.replace('_', ' ')}" for name, state in troubled]
    value = "\n".join(lines)
    if indicator == "none":
        summary = f"ok ({named} not operational)" if names else "ok"
        outcome = Outcome.OK
    else:
        word = INDICATOR_WORDS.get(indicator, indicator)
        summary = f"{word}: {named}" if names else word
        outcome = Outcome.FAILED
    return result(
        check, outcome, summary, value=value, seconds=status.seconds, started_at=started_at
    )


def not_operational(document: Any) -> list[tuple[str, str]]:
    """``(name, status)`` of the components that are not operational; groups only when none
    of their members is listed (a group's status repeats its members')."""
    try:
        items = [c for c in document["components"] if isinstance(c, dict)]
    except (KeyError, TypeError):
        return []
    bad = [c for c in items if c.get("status", "operational") != "operational"]
    members = [c for c in bad if not c.get("group")]
    chosen = members or bad
    return [(str(c.get("name", "?")), str(c.get("status"))) for c in chosen]


# ---- prometheus -------------------------------------------------------------------------------


async def run_prometheus(check: PrometheusCheck, prometheus_url: str | None) -> CheckResult:
    """A PromQL instant query; failed when a series is above ``above`` or below ``below``."""
    started_at = datetime.now(UTC)
    if not prometheus_url:
        return result(check, Outcome.ERROR, NO_PROMETHEUS, started_at=started_at)
    url = f"{prometheus_url.rstrip('/')}/api/v1/query"
    try:
        async with asyncio.timeout(check.timeout.total_seconds()), _client(check) as client:
            answer = await fetch(client, "GET", url, params={"query": check.query})
    except (TimeoutError, httpx.HTTPError) as exc:
        return result(
            check, Outcome.ERROR, http_failure(exc, url, check.timeout), started_at=started_at
        )

    def done(outcome: Outcome, summary: str, value: str | None = None) -> CheckResult:
        return result(
            check, outcome, summary, value=value, seconds=answer.seconds, started_at=started_at
        )

    try:
        body = answer.json()
    except ValueError:
        return done(Outcome.ERROR, f"Prometheus answered {answer.status}, not JSON")
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return done(Outcome.ERROR, f"query error: {error or answer.status}")
    try:
        series = query_series(body["data"])
    except (KeyError, TypeError, ValueError) as exc:
        return done(Outcome.ERROR, f"unexpected answer: {exc}")
    measured = [(labels, v) for labels, v in series if not math.isnan(v)]
    if not measured:
        return done(Outcome.ERROR, "no data" + (" (NaN)" if series else ""))
    unit = check.unit
    lines = [f"{labels} {number(v)}{unit}" for labels, v in measured[:SERIES_LISTED]]
    if len(measured) > SERIES_LISTED:
        lines.append(f"… {len(measured) - SERIES_LISTED} more")
    listing = "\n".join(lines)
    above = [v for _, v in measured if check.above is not None and v > check.above]
    below = [v for _, v in measured if check.below is not None and v < check.below]
    if above or below:
        if above:
            assert check.above is not None
            summary = f"{number(max(above))}{unit} > {number(check.above)}{unit}"
        else:
            assert check.below is not None
            summary = f"{number(min(below))}{unit} < {number(check.below)}{unit}"
        failing = len(above) + len(below)
        if len(measured) > 1:
            summary += f" ({failing} of {len(measured)} series)"
        return done(Outcome.FAILED, summary, listing)
    values = [v for _, v in measured]
    shown = max(values) if check.above is not None else min(values)
    return done(Outcome.OK, f"ok {number(shown)}{unit}", listing)


def query_series(data: Any) -> list[tuple[str, float]]:
    """``(labels, value)`` per series of an instant query's ``data`` (vector or scalar)."""
    kind = data["resultType"]
    if kind == "scalar":
        return [("scalar", float(data["result"][1]))]
    if kind != "vector":
        raise ValueError(f"a {kind}, not a vector: use an instant query")
    return [(series_name(item["metric"]), float(item["value"][1])) for item in data["result"]]


def series_name(metric: Mapping[str, str]) -> str:
    """``name{label="value", ...}`` as Prometheus writes a series; ``{}`` for an aggregate."""
    name = metric.get("__name__", "")
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


# ---- changes ----------------------------------------------------------------------------------


async def run_changes(
    check: ChangesCheck, store: Store, service: str, now: datetime | None = None
) -> CheckResult:
    """The service's changes within ``within``, newest first. Information: always ok."""
    started_at = datetime.now(UTC)
    now = now or started_at
    service = check.service or service
    found = await asyncio.to_thread(
        store.changes, service=service, since=now - check.within, limit=CHANGES_LISTED
    )
    if not found:
        return result(check, Outcome.OK, f"none in {window(check.within)}", started_at=started_at)
    newest = found[0]
    summary = one_line(newest.summary, CHANGE_SUMMARY_CHARS)
    if newest.who:
        summary += f" by {newest.who}"
    summary += f" {age(now - newest.at)}"
    lines = []
    for change in found[:CHANGES_LISTED]:
        line = f"{change.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC · {one_line(change.summary, 200)}"
        lines.append(line + (f" · {change.who}" if change.who else ""))
    return result(check, Outcome.OK, summary, value="\n".join(lines), started_at=started_at)


def age(delta: timedelta) -> str:
    """``45s ago``, ``12m ago``, ``3h20m ago``, ``2d ago``; a future time is ``just now``."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "just now"
    if seconds < 60:
        return f"{seconds}s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes}m ago"
    if hours < 24:
        rest = minutes % 60
        return f"{hours}h{rest}m ago" if rest else f"{hours}h ago"
    rest = hours % 24
    return f"{days}d{rest}h ago" if rest else f"{days}d ago"


def window(delta: timedelta) -> str:
    """A look-back window: ``24h``, ``48h``, ``30m``, ``7d``."""
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds <= 72 * 3600:
        return f"{seconds // 3600}h"
    return format_duration(delta)


# ---- command and manual -----------------------------------------------------------------------


async def run_command(check: CommandCheck, allowed: bool) -> CheckResult:
    """The policy's argv, no shell; exit 0 → ok. Only where the worker allows commands."""
    started_at = datetime.now(UTC)
    if not allowed:
        return result(check, Outcome.ERROR, COMMANDS_NOT_ALLOWED, started_at=started_at)
    max_output = min(check.max_output, VALUE_CHARS)
    try:
        run = await run_argv(check.argv, timeout=check.timeout, max_output=max_output)
    except FileNotFoundError:
        return result(check, Outcome.ERROR, f"not found: {check.argv[0]}", started_at=started_at)
    except OSError as exc:
        summary = f"cannot run {check.argv[0]}: {exc.strerror or exc}"
        return result(check, Outcome.ERROR, summary, started_at=started_at)
    output = run.output or None
    if run.timed_out:
        summary = f"timed out after {span(check.timeout)}"
        outcome = Outcome.ERROR
    elif run.exit_code == 0:
        summary, outcome = "ok", Outcome.OK
    else:
        summary, outcome = run.exit_text, Outcome.FAILED
    return result(check, outcome, summary, value=output, seconds=run.seconds, started_at=started_at)


def run_manual(check: ManualCheck) -> CheckResult:
    """A checklist item for a person: shown with the results, never run."""
    summary = one_line(check.text, SUMMARY_CHARS)
    value = check.text if summary != check.text else None
    return result(check, Outcome.MANUAL, summary, value=value)


# ---- the activities ---------------------------------------------------------------------------


class RunbookActivities(MitigationActivities):
    """The runbook activities, bound to the store and the settings::

        runbooks = RunbookActivities(store, get_settings())
        Worker(..., activities=[*runbooks.activities, ...])

    ``environ`` (tests) stands in for ``os.environ`` when reading ``headers_from_env``.
    """

    def __init__(
        self,
        store: Store,
        settings: RunbookSettings,
        *,
        environ: Mapping[str, str] | None = None,
        retry_delays: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(store, settings, environ=environ, retry_delays=retry_delays)

    @property
    def activities(self) -> list[Any]:
        return [self.run_check, self.run_mitigation]

    @activity.defn(name="Run check")
    async def run_check(self, inp: RunCheck) -> CheckResult:
        """One check; its result (never an exception for what it finds)."""
        return await heartbeating(self.check(inp))

    async def check(self, inp: RunCheck) -> CheckResult:
        check = inp.check
        try:
            if isinstance(check, HttpCheck):
                return await run_http(check, self._environ)
            if isinstance(check, StatusPageCheck):
                return await run_status_page(check)
            if isinstance(check, PrometheusCheck):
                return await run_prometheus(check, self._settings.prometheus_url)
            if isinstance(check, ChangesCheck):
                return await run_changes(check, self._store, inp.service)
            if isinstance(check, CommandCheck):
                return await run_command(check, self._settings.runbook_commands)
            return run_manual(check)
        except Exception as exc:  # a bug, or the store unavailable: say so, do not retry
            log.exception("check %s of %s failed", check.name, inp.incident_id)
            return result(check, Outcome.ERROR, f"internal error: {type(exc).__name__}")
