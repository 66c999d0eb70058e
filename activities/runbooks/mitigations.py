"""Mitigation actions, run once per idempotency key, through the ``mitigation_runs`` ledger.

    row = mitigation_runs[key]   (written pending BEFORE anything goes out)
    succeeded / failed / unknown → the stored result; nothing is sent or run again
    http, pending                → an earlier attempt stopped mid-call: send again with the
                                   SAME Idempotency-Key (the target de-duplicates, Stripe-style)
    command, pending             → the outcome is unknown: status unknown, NOT run again
    none                         → record pending, send / run, record the result

An HTTP action that gets no usable answer (unreachable, timed out, 408/409/425/429/5xx) is
sent again with the same key, ``HTTP_TRIES`` times in all (counted in the row, across
attempts), then recorded as failed (unknown after a timeout: the target may have acted). The
next try runs in the same activity attempt when its start-to-close timeout leaves room for
it; otherwise the attempt fails retryably (``MitigationRetry``, row still pending) and
Temporal's retry sends it. Configuration problems (a header's
environment variable unset, a bad body template, commands not allowed) are answered before
the ledger is touched: nothing was sent, so the same key can run once they are fixed.

What was sent is recorded (method, URL, header NAMES, the body), never a secret's value.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from string import Template
from urllib.parse import quote_plus

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.runbooks.common import (
    MissingEnv,
    env_headers,
    fetch,
    heartbeating,
    http_failure,
    one_line,
    run_argv,
    span,
)
from activities.runbooks.models import (
    EXCERPT_CHARS,
    REQUEST_CHARS,
    MitigationResult,
    MitigationStatus,
    RunMitigation,
)
from activities.settings import RunbookSettings, env_var
from domain.runbooks import CommandCheck, HttpAction
from storage.store import MitigationRun, Store

# The placeholders a body template may use; nothing else (never alert text).
BODY_VARIABLES = (
    "incident_id",
    "service",
    "action",
    "proposed_by",
    "approved_by",
    "idempotency_key",
)
HTTP_TRIES = 3
RETRY_DELAYS_S = (1.0, 3.0)  # before the 2nd and 3rd sends
RETRY_STATUSES = frozenset({408, 409, 425, 429})  # and every 5xx
DEADLINE_MARGIN_S = 3.0  # of an attempt's start-to-close timeout, kept for the records
SUMMARY_CHARS = 500
UNKNOWN_AFTER_CRASH = "the worker stopped during the run; not run again — check by hand"


class _Refused(Exception):
    """A configuration problem found before anything was sent."""


class MitigationActivities:
    """``run_mitigation``; :class:`activities.runbooks.RunbookActivities` adds the checks."""

    def __init__(
        self,
        store: Store,
        settings: RunbookSettings,
        *,
        environ: Mapping[str, str] | None = None,
        retry_delays: tuple[float, ...] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._environ = environ
        self._retry_delays = RETRY_DELAYS_S if retry_delays is None else retry_delays

    @activity.defn(name="Run mitigation")
    async def run_mitigation(self, inp: RunMitigation) -> MitigationResult:
        """Carry out the action once; its result. It raises only when it stops (cancelled,
        the worker going away) or leaves the next HTTP try to Temporal's retry
        (``MitigationRetry``)."""
        return await heartbeating(self.mitigate(inp))

    async def mitigate(self, inp: RunMitigation) -> MitigationResult:
        started_at = datetime.now(UTC)
        http, command = inp.mitigation.http, inp.mitigation.command
        found = await asyncio.to_thread(self._store.mitigation_run, inp.idempotency_key)
        if found is not None and found.status != "pending" and self._same(found, inp):
            return self._stored(found)  # done before: whatever the configuration is now
        request: PreparedRequest | None = None
        try:
            if http is not None:
                request = prepare_http(inp, http, self._environ)
            else:
                assert command is not None
                if not self._settings.runbook_commands:
                    raise _Refused(
                        f"commands are not allowed on this worker ({env_var('runbook_commands')})"
                    )
        except _Refused as refused:
            return MitigationResult(
                ok=False,
                status="failed",
                summary=one_line(str(refused), SUMMARY_CHARS),
                request=describe_command(command) if command is not None else "",
                attempts=0,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            )
        before, row = await asyncio.to_thread(
            self._store.begin_mitigation_run,
            inp.idempotency_key,
            incident_id=inp.incident_id,
            action=inp.action,
        )
        if not self._same(row, inp):
            return MitigationResult(
                ok=False,
                status="failed",
                summary=f"idempotency key already used for {row.action} of {row.incident_id}",
                attempts=0,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            )
        if before is not None and before.status != "pending":
            return self._stored(before)
        if http is not None:
            assert request is not None
            return await self._send(inp, http, request, row)
        assert command is not None
        if before is not None:  # pending: an earlier attempt ran it, with what outcome?
            return await self._finish(
                inp,
                MitigationResult(
                    ok=False,
                    status="unknown",
                    summary=UNKNOWN_AFTER_CRASH,
                    request=describe_command(command),
                    attempts=row.attempts,
                    started_at=before.started_at,
                    finished_at=datetime.now(UTC),
                ),
            )
        return await self._run_command(inp, command, row, started_at)

    # ---- http ---------------------------------------------------------------------------

    async def _send(
        self,
        inp: RunMitigation,
        action: HttpAction,
        request: PreparedRequest,
        row: MitigationRun,
    ) -> MitigationResult:
        attempts = row.attempts
        deadline = _deadline()
        while True:
            outcome = await send_http(action, request)
            if not (outcome.retryable and attempts < HTTP_TRIES):
                break
            delays = self._retry_delays
            delay = delays[min(attempts - 1, len(delays) - 1)] if delays else 0.0
            if deadline is not None and (
                time.monotonic() + delay + action.timeout.total_seconds() > deadline
            ):
                # No time left in this attempt: the next one sends again (row still pending).
                raise ApplicationError(
                    f"{outcome.summary}; will send again with the same Idempotency-Key",
                    type="MitigationRetry",
                    next_retry_delay=timedelta(seconds=delay) if delay else None,
                )
            await asyncio.sleep(delay)
            _, row = await asyncio.to_thread(
                self._store.begin_mitigation_run,
                inp.idempotency_key,
                incident_id=inp.incident_id,
                action=inp.action,
            )
            attempts = row.attempts
        status: MitigationStatus
        summary = outcome.summary
        if outcome.ok:
            status = "succeeded"
        elif outcome.timed_out:
            status = "unknown"
            summary += f" ({_tries(attempts)}); the target may have acted — check by hand"
        else:
            status = "failed"
            if outcome.retryable and attempts > 1:
                summary += f" ({_tries(attempts)})"
        return await self._finish(
            inp,
            MitigationResult(
                ok=outcome.ok,
                status=status,
                summary=one_line(summary, SUMMARY_CHARS),
                request=request.described,
                response_status=outcome.status,
                response_excerpt=outcome.excerpt,
                attempts=attempts,
                started_at=row.started_at,
                finished_at=datetime.now(UTC),
            ),
        )

    # ---- command ------------------------------------------------------------------------

    async def _run_command(
        self, inp: RunMitigation, command: CommandCheck, row: MitigationRun, started_at: datetime
    ) -> MitigationResult:
        described = describe_command(command)
        max_output = min(command.max_output, EXCERPT_CHARS)
        try:
            run = await run_argv(command.argv, timeout=command.timeout, max_output=max_output)
        except asyncio.CancelledError:
            # Killed with its session; what it did before is unknown. Recorded in a thread
            # (the write may wait for the lock; this loop runs the worker's workflow tasks),
            # shielded so that a second cancel cannot lose the record.
            unknown = MitigationResult(
                ok=False,
                status="unknown",
                summary="cancelled during the run and killed — check by hand",
                request=described,
                attempts=row.attempts,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            )
            await asyncio.shield(
                asyncio.to_thread(
                    self._store.finish_mitigation_run,
                    inp.idempotency_key,
                    "unknown",
                    unknown.model_dump(mode="json"),
                )
            )
            raise
        except OSError as exc:
            not_found = isinstance(exc, FileNotFoundError)
            summary = (
                f"not found: {command.argv[0]}"
                if not_found
                else f"cannot run {command.argv[0]}: {exc.strerror or exc}"
            )
            return await self._finish(
                inp,
                MitigationResult(
                    ok=False,
                    status="failed",
                    summary=summary,
                    request=described,
                    attempts=row.attempts,
                    started_at=started_at,
                    finished_at=datetime.now(UTC),
                ),
            )
        status: MitigationStatus
        if run.timed_out:
            status = "unknown"
            summary = f"timed out after {span(command.timeout)} and killed — check by hand"
        elif run.exit_code == 0:
            status, summary = "succeeded", "exit 0"
        else:
            status, summary = "failed", run.exit_text
        return await self._finish(
            inp,
            MitigationResult(
                ok=status == "succeeded",
                status=status,
                summary=summary,
                request=described,
                response_status=run.exit_code,
                response_excerpt=run.output or None,
                attempts=row.attempts,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            ),
        )

    # ---- the ledger ---------------------------------------------------------------------

    async def _finish(self, inp: RunMitigation, outcome: MitigationResult) -> MitigationResult:
        recorded = await asyncio.to_thread(
            self._store.finish_mitigation_run,
            inp.idempotency_key,
            outcome.status,
            outcome.model_dump(mode="json"),
        )
        if recorded:
            return outcome
        # Another attempt finished first (this one was presumed dead): its result stands.
        row = await asyncio.to_thread(self._store.mitigation_run, inp.idempotency_key)
        return self._stored(row) if row is not None and row.result else outcome

    @staticmethod
    def _same(row: MitigationRun, inp: RunMitigation) -> bool:
        return (row.incident_id, row.action) == (inp.incident_id, inp.action)

    @staticmethod
    def _stored(row: MitigationRun) -> MitigationResult:
        if row.result is None:  # finished without a result: not written by this code
            return MitigationResult(
                ok=False, status="unknown", summary=UNKNOWN_AFTER_CRASH, attempts=row.attempts
            )
        return MitigationResult.model_validate(row.result)


def _deadline() -> float | None:
    """When this activity attempt times out (``time.monotonic()``), less a margin for
    recording the result; None outside an activity or without a start-to-close timeout."""
    if not activity.in_activity():
        return None
    timeout = activity.info().start_to_close_timeout
    if not timeout:
        return None
    return time.monotonic() + timeout.total_seconds() - DEADLINE_MARGIN_S


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


# ---- preparing and sending an HTTP action -----------------------------------------------------


class PreparedRequest:
    """The request as it will go out, and as it is recorded (secrets named, never shown)."""

    def __init__(
        self, action: HttpAction, headers: dict[str, str], body: str | None, key: str
    ) -> None:
        self.headers = headers
        self.body = body
        lines = [f"{action.method} {action.url}", f"Idempotency-Key: {key}"]
        if body is not None:
            lines.append(f"Content-Type: {action.content_type}")
        lines += [
            f"{h}: ${env} (from the environment)" for h, env in action.headers_from_env.items()
        ]
        text = "\n".join(lines) + ("\n\n" + body if body is not None else "")
        self.described = text if len(text) <= REQUEST_CHARS else text[: REQUEST_CHARS - 1] + "…"


def body_values(inp: RunMitigation) -> dict[str, str]:
    return {
        "incident_id": inp.incident_id,
        "service": inp.service,
        "action": inp.action,
        "proposed_by": inp.proposed_by,
        "approved_by": inp.approved_by or "",
        "idempotency_key": inp.idempotency_key,
    }


def render_body(template: str, values: Mapping[str, str], content_type: str) -> str:
    """``string.Template`` with only :data:`BODY_VARIABLES`; values JSON-escaped for a JSON
    body (``"$proposed_by"`` stays valid JSON whatever the name), form-encoded for a form.
    Raises ValueError naming an unknown or malformed placeholder."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        values = {k: json.dumps(v)[1:-1] for k, v in values.items()}
    elif kind == "application/x-www-form-urlencoded":
        values = {k: quote_plus(v) for k, v in values.items()}
    body = Template(template)
    if not body.is_valid():
        raise ValueError("body: a `$` that starts no placeholder (write `$$` for a dollar)")
    unknown = [name for name in body.get_identifiers() if name not in BODY_VARIABLES]
    if unknown:
        allowed = ", ".join(f"${name}" for name in BODY_VARIABLES)
        raise ValueError(f"body: unknown ${unknown[0]} (use {allowed})")
    return body.substitute(values)


def prepare_http(
    inp: RunMitigation, action: HttpAction, environ: Mapping[str, str] | None
) -> PreparedRequest:
    try:
        secret = env_headers(action.headers_from_env, environ)
    except MissingEnv as missing:
        raise _Refused(str(missing)) from None
    body = None
    if action.body is not None:
        try:
            body = render_body(action.body, body_values(inp), action.content_type)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
    headers = {"Idempotency-Key": inp.idempotency_key}
    if body is not None:
        headers["Content-Type"] = action.content_type
    headers.update(secret)
    return PreparedRequest(action, headers, body, inp.idempotency_key)


class Sent:
    """One send's outcome."""

    def __init__(
        self,
        *,
        ok: bool,
        summary: str,
        retryable: bool = False,
        timed_out: bool = False,
        status: int | None = None,
        excerpt: str | None = None,
    ) -> None:
        self.ok = ok
        self.summary = summary
        self.retryable = retryable
        self.timed_out = timed_out
        self.status = status
        self.excerpt = excerpt


async def send_http(action: HttpAction, request: PreparedRequest) -> Sent:
    seconds = action.timeout.total_seconds()
    content = request.body.encode() if request.body is not None else None
    try:
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client,
        ):
            answer = await fetch(
                client, action.method, action.url, headers=request.headers, content=content
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        # The request may have reached the target: sending again with the key is safe.
        connect = isinstance(exc, httpx.ConnectTimeout)
        summary = http_failure(exc, action.url, action.timeout)
        return Sent(ok=False, summary=summary, retryable=True, timed_out=not connect)
    except httpx.HTTPError as exc:
        return Sent(ok=False, summary=http_failure(exc, action.url, action.timeout), retryable=True)
    text = answer.text
    excerpt = text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
    summary = f"{answer.status} {answer.reason}".strip()
    ok = answer.status in action.expect_status
    return Sent(
        ok=ok,
        summary=summary,
        retryable=not ok and (answer.status in RETRY_STATUSES or answer.status >= 500),
        status=answer.status,
        excerpt=excerpt or None,
    )


def describe_command(command: CommandCheck) -> str:
    return "$ " + shlex.join(command.argv)
