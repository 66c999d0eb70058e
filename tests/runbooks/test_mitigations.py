"""Mitigation actions, once per idempotency key, against a deploy-tool stand-in on loopback.

The stand-in records every call and executes each ``Idempotency-Key`` once. A crash is real:
the activity is cancelled while the stand-in holds its answer back, or a worker process is
SIGKILLed during the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.runbooks import MitigationResult, RunbookActivities, RunMitigation
from activities.runbooks.mitigations import render_body
from activities.settings import RunbookSettings
from domain.runbooks import Mitigation
from storage.store import Store
from tests.channels.fake_http import BlackHole, Reply, free_port
from tests.runbooks.servers import DeployTool
from tests.storage.locks import hold_the_write_lock

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ROLLBACK = "/api/services/api/rollback"
BODY = '{"incident": "$incident_id", "requested_by": "$proposed_by", "approved_by": "$approved_by"}'


def rollback(url: str, **http: Any) -> Mitigation:
    fields = {"url": url, "body": BODY, "headers_from_env": {"Authorization": "DEPLOY_TOKEN"}}
    return Mitigation.model_validate(
        {"title": "Roll back", "risk": "high", "http": {**fields, **http}}
    )


def command_action(*argv: str, timeout: str = "10s") -> Mitigation:
    return Mitigation.model_validate(
        {"title": "Restart", "command": {"name": "restart", "argv": argv, "timeout": timeout}}
    )


def order(mitigation: Mitigation, key: str = "INC-2026-11-28-001:mitigation:1") -> RunMitigation:
    return RunMitigation(
        incident_id="INC-2026-11-28-001",
        service="api",
        action="rollback" if mitigation.http else "restart",
        mitigation=mitigation,
        proposed_by="carol",
        approved_by="erin",
        idempotency_key=key,
    )


def activity_env(start_to_close: timedelta = timedelta(minutes=5)) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=start_to_close)
    return env


async def run(acts: RunbookActivities, inp: RunMitigation) -> MitigationResult:
    return await activity_env().run(acts.run_mitigation, inp)


# ---- http ---------------------------------------------------------------------------------------


async def test_rollback_is_sent_once_with_the_key_and_recorded(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    result = await run(runbooks, inp)
    assert (result.ok, result.status, result.summary) == (True, "succeeded", "202 Accepted")
    assert (result.response_status, result.attempts) == (202, 1)
    assert result.response_excerpt is not None and "rolling back" in result.response_excerpt

    (call,) = deploy_tool.calls
    request = call.request
    assert (request.method, request.path) == ("POST", ROLLBACK)
    assert request.header("Idempotency-Key") == inp.idempotency_key
    assert request.header("Authorization") == "s3cret-token"
    assert request.header("Content-Type") == "application/json"
    assert json.loads(request.raw) == {
        "incident": "INC-2026-11-28-001",
        "requested_by": "carol",
        "approved_by": "erin",
    }
    # The audit record: what was sent, the secret by name only.
    body = request.raw.decode()
    assert result.request == (
        f"POST {deploy_tool.url}{ROLLBACK}\n"
        f"Idempotency-Key: {inp.idempotency_key}\n"
        "Content-Type: application/json\n"
        "Authorization: $DEPLOY_TOKEN (from the environment)\n\n" + body
    )
    assert "s3cret-token" not in result.model_dump_json()
    (row,) = store.mitigation_runs("INC-2026-11-28-001")
    assert (row.status, row.action, row.attempts) == ("succeeded", "rollback", 1)
    assert MitigationResult.model_validate(row.result) == result


async def test_the_same_key_twice_calls_once(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    first = await run(runbooks, inp)
    again = await run(runbooks, inp)
    assert again == first
    # Done is done, whatever the worker's configuration has become since.
    unset = RunbookActivities(store, RunbookSettings(), environ={})
    assert await run(unset, inp) == first
    assert len(deploy_tool.calls) == 1
    other = await run(runbooks, order(inp.mitigation, key="INC-2026-11-28-001:mitigation:2"))
    assert other.ok and len(deploy_tool.executed) == 2


async def test_after_a_crash_mid_call_it_is_sent_again_with_the_same_key(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    hold = deploy_tool.hold(ROLLBACK)  # the tool acts, then keeps its answer back
    env = activity_env()
    attempt = asyncio.ensure_future(env.run(runbooks.run_mitigation, inp))
    assert await asyncio.to_thread(hold.wait_reached, 10)
    env.cancel()  # the worker goes away before the answer arrives
    with pytest.raises(asyncio.CancelledError):
        await attempt
    hold.release()
    row = store.mitigation_run(inp.idempotency_key)
    assert row is not None and row.status == "pending"

    result = await run(runbooks, inp)
    assert (result.status, result.attempts) == ("succeeded", 2)
    keys = [c.request.header("Idempotency-Key") for c in deploy_tool.calls]
    assert keys == [inp.idempotency_key, inp.idempotency_key]
    assert len(deploy_tool.executions(ROLLBACK)) == 1  # the tool de-duplicated the re-send


async def test_a_worker_killed_during_the_call_still_rolls_back_once(
    deploy_tool: DeployTool, store: Store, tmp_path: Path, runbooks: RunbookActivities
) -> None:
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    hold = deploy_tool.hold(ROLLBACK)
    worker = _worker(tmp_path, inp)
    try:
        assert await asyncio.to_thread(hold.wait_reached, 30), worker.stderr
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        hold.release()
        _stop(worker)
    result = await run(runbooks, inp)  # the retry, on another worker
    assert (result.status, result.attempts) == ("succeeded", 2)
    assert len(deploy_tool.calls) == 2
    assert len(deploy_tool.executions(ROLLBACK)) == 1


async def test_transient_answers_are_retried_with_the_same_key(
    runbooks: RunbookActivities, deploy_tool: DeployTool
) -> None:
    deploy_tool.inject(ROLLBACK, Reply(503, {"error": "busy"}), times=1)
    result = await run(runbooks, order(rollback(deploy_tool.url + ROLLBACK)))
    assert (result.status, result.summary, result.attempts) == ("succeeded", "202 Accepted", 2)
    assert len(deploy_tool.calls) == 2 and len(deploy_tool.executed) == 1


async def test_without_time_left_the_next_try_is_the_next_attempt(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    deploy_tool.inject(ROLLBACK, Reply(503, {"error": "busy"}), times=1)
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    short = activity_env(start_to_close=timedelta(seconds=2))
    with pytest.raises(ApplicationError) as raised:
        await short.run(runbooks.run_mitigation, inp)
    assert raised.value.type == "MitigationRetry" and not raised.value.non_retryable
    assert raised.value.message == (
        "503 Service Unavailable; will send again with the same Idempotency-Key"
    )
    row = store.mitigation_run(inp.idempotency_key)
    assert row is not None and (row.status, row.attempts) == ("pending", 1)
    result = await run(runbooks, inp)  # Temporal's retry
    assert (result.status, result.attempts) == ("succeeded", 2)
    assert len(deploy_tool.calls) == 2 and len(deploy_tool.executed) == 1


async def test_a_failure_that_lasts_is_failed_after_three_tries(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    deploy_tool.inject(ROLLBACK, Reply(503, {"error": "busy"}), times=10)
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    result = await run(runbooks, inp)
    assert (result.ok, result.status) == (False, "failed")
    assert result.summary == "503 Service Unavailable (3 tries)"
    assert (result.response_status, result.attempts) == (503, 3)
    assert result.response_excerpt == '{"error": "busy"}'
    assert len(deploy_tool.calls) == 3
    again = await run(runbooks, inp)  # recorded: not sent again
    assert again == result and len(deploy_tool.calls) == 3


async def test_a_refusal_is_not_retried(
    runbooks: RunbookActivities, deploy_tool: DeployTool
) -> None:
    deploy_tool.inject(ROLLBACK, Reply(400, {"error": "no previous release"}))
    result = await run(runbooks, order(rollback(deploy_tool.url + ROLLBACK)))
    assert (result.status, result.summary, result.attempts) == ("failed", "400 Bad Request", 1)


async def test_unreachable_and_hanging_targets(runbooks: RunbookActivities) -> None:
    closed = free_port()
    gone = await run(runbooks, order(rollback(f"http://127.0.0.1:{closed}{ROLLBACK}")))
    assert (gone.status, gone.summary, gone.attempts) == (
        "failed",
        f"unreachable: 127.0.0.1:{closed} (3 tries)",
        3,
    )
    with BlackHole() as hole:
        hanging = rollback(hole.url + ROLLBACK, timeout=timedelta(milliseconds=300))
        began = time.monotonic()
        result = await run(runbooks, order(hanging, key="k-hang"))
        assert time.monotonic() - began < 3
    assert (result.status, result.summary) == (
        "unknown",
        "timed out after 300ms (3 tries); the target may have acted — check by hand",
    )


async def test_configuration_problems_send_nothing_and_record_nothing(
    runbooks: RunbookActivities, deploy_tool: DeployTool, store: Store
) -> None:
    no_token = rollback(deploy_tool.url + ROLLBACK, headers_from_env={"X-Token": "NOT_SET_HERE"})
    result = await run(runbooks, order(no_token))
    assert (result.status, result.summary, result.attempts) == (
        "failed",
        "NOT_SET_HERE is not set",
        0,
    )
    bad_body = rollback(deploy_tool.url + ROLLBACK, body='{"alert": "$summary"}')
    bad = await run(runbooks, order(bad_body))
    assert bad.summary == (
        "body: unknown $summary (use $incident_id, $service, $action, $proposed_by, "
        "$approved_by, $idempotency_key)"
    )
    assert deploy_tool.calls == []
    assert store.mitigation_runs("INC-2026-11-28-001") == []
    # Fixed, the same key runs.
    fixed = await run(runbooks, order(rollback(deploy_tool.url + ROLLBACK)))
    assert fixed.ok and len(deploy_tool.calls) == 1


async def test_a_key_belongs_to_one_action(
    runbooks: RunbookActivities, deploy_tool: DeployTool
) -> None:
    inp = order(rollback(deploy_tool.url + ROLLBACK))
    await run(runbooks, inp)
    reused = inp.model_copy(update={"action": "scale-up"})
    result = await run(runbooks, reused)
    assert (result.status, result.summary) == (
        "failed",
        "idempotency key already used for rollback of INC-2026-11-28-001",
    )
    assert len(deploy_tool.calls) == 1


def test_body_values_are_escaped_for_the_content_type() -> None:
    values = {"proposed_by": 'carol "the" \\ admin\n', "incident_id": "INC-1"}
    body = render_body('{"by": "$proposed_by", "id": "${incident_id}"}', values, "application/json")
    assert json.loads(body) == {"by": 'carol "the" \\ admin\n', "id": "INC-1"}
    form_type = "application/x-www-form-urlencoded"
    form = render_body("by=$proposed_by&id=$incident_id", values, form_type)
    assert form == "by=carol+%22the%22+%5C+admin%0A&id=INC-1"
    text = render_body("$$5 for $proposed_by", {"proposed_by": "x"}, "text/plain")
    assert text == "$5 for x"
    with pytest.raises(ValueError, match=r"a `\$` that starts no placeholder"):
        render_body("costs $5", {}, "text/plain")


# ---- command ------------------------------------------------------------------------------------


async def test_command_action_runs_once(
    runbooks: RunbookActivities, tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "ran"
    script = f"open({str(log)!r}, 'a').write('ran\\n'); print('restarted 3 pods')"
    inp = order(command_action(sys.executable, "-c", script))
    result = await run(runbooks, inp)
    assert (result.ok, result.status, result.summary) == (True, "succeeded", "exit 0")
    assert (result.response_status, result.response_excerpt) == (0, "restarted 3 pods\n")
    assert result.request.startswith(f"$ {sys.executable} -c ")
    assert await run(runbooks, inp) == result
    assert log.read_text() == "ran\n"


async def test_command_action_failing_and_not_allowed(store: Store, tmp_path: Path) -> None:
    allowed = RunbookActivities(store, RunbookSettings(runbook_commands=True))
    failing = await run(allowed, order(command_action("false"), key="k-false"))
    assert (failing.status, failing.summary, failing.response_status) == ("failed", "exit 1", 1)

    marker = tmp_path / "touched"
    refused = RunbookActivities(store, RunbookSettings())
    result = await run(refused, order(command_action("touch", str(marker)), key="k-touch"))
    assert (result.status, result.attempts) == ("failed", 0)
    assert result.summary == (
        "commands are not allowed on this worker (FIREWATCH_RUNBOOK_COMMANDS)"
    )
    assert not marker.exists() and store.mitigation_run("k-touch") is None


async def test_a_command_found_pending_is_unknown_and_not_run_again(
    runbooks: RunbookActivities, store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "ran"
    inp = order(command_action("touch", str(log)))
    store.begin_mitigation_run(inp.idempotency_key, incident_id=inp.incident_id, action="restart")
    result = await run(runbooks, inp)
    assert (result.ok, result.status, result.attempts) == (False, "unknown", 2)
    assert result.summary == "the worker stopped during the run; not run again — check by hand"
    assert not log.exists()
    assert await run(runbooks, inp) == result  # and so it stays


async def test_a_worker_killed_during_a_command_does_not_run_it_again(
    runbooks: RunbookActivities, store: Store, tmp_path: Path
) -> None:
    log, pid_file = tmp_path / "ran", tmp_path / "pid"
    script = (
        "import os, time\n"
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    inp = order(command_action(sys.executable, "-c", script, timeout="60s"))
    worker = _worker(tmp_path, inp)
    try:
        for _ in range(300):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        _stop(worker)
        if pid_file.exists():  # the command outlives its worker (its own session): end it
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    result = await run(runbooks, inp)
    assert (result.status, result.attempts) == ("unknown", 2)
    assert log.read_text() == "ran\n"


async def test_a_command_cancelled_mid_run_is_unknown_and_the_worker_keeps_going(
    runbooks: RunbookActivities, store: Store, tmp_path: Path
) -> None:
    """Cancelled mid-run (the worker shutting down), the command is killed and the run
    recorded "unknown". That write can wait for SQLite's write lock: it waits in a thread,
    not on the event loop that also polls and completes the worker's workflow tasks."""
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    inp = order(command_action(sys.executable, "-c", script, timeout="60s"))
    env = activity_env()
    attempt = asyncio.ensure_future(env.run(runbooks.run_mitigation, inp))
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    hold_s = 1.0
    holder = await hold_the_write_lock(tmp_path, hold_s)
    env.cancel()
    gaps: list[float] = []
    last = time.monotonic()
    while not attempt.done():
        await asyncio.sleep(0.01)
        gaps.append(time.monotonic() - last)
        last = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    holder.join()
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.2f} s"
    row = store.mitigation_run(inp.idempotency_key)
    assert row is not None and row.status == "unknown"
    assert row.result is not None
    assert row.result["summary"] == "cancelled during the run and killed — check by hand"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed (and reaped) with its session


async def test_command_timeout_is_unknown(runbooks: RunbookActivities) -> None:
    result = await run(runbooks, order(command_action("sleep", "30", timeout="0.5s")))
    assert (result.status, result.summary) == (
        "unknown",
        "timed out after 500ms and killed — check by hand",
    )


# ---- helpers ------------------------------------------------------------------------------------


def _worker(tmp_path: Path, inp: RunMitigation) -> subprocess.Popen[str]:
    env = dict(os.environ, DEPLOY_TOKEN="s3cret-token")
    return subprocess.Popen(
        [PY, "-m", "tests.runbooks.worker_stand_in", str(tmp_path), inp.model_dump_json()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.kill()
        worker.wait(10)
    for stream in (worker.stdout, worker.stderr):
        if stream is not None:
            stream.close()
