"""``command`` and ``manual`` checks: real processes, no shell, timeouts, capped output."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.runbooks import RunbookActivities, RunCheck
from activities.runbooks.checks import run_command, run_manual
from activities.settings import RunbookSettings
from domain.runbooks import CommandCheck, ManualCheck, Outcome
from storage.store import Store

PY = sys.executable


def command(*argv: str, **fields: object) -> CommandCheck:
    return CommandCheck.model_validate({"name": "cmd", "argv": argv, **fields})


async def test_commands_need_the_worker_setting(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = await run_command(command("touch", str(marker)), allowed=False)
    assert result.outcome == Outcome.ERROR
    assert result.summary == (
        "commands are not allowed on this worker (FIREWATCH_RUNBOOK_COMMANDS)"
    )
    assert not marker.exists()


async def test_no_shell_arguments_are_literal() -> None:
    result = await run_command(command("echo", "$HOME; ls"), allowed=True)
    assert (result.outcome, result.summary, result.value) == (Outcome.OK, "ok", "$HOME; ls\n")
    assert result.latency_ms is not None


async def test_exit_status_and_stderr() -> None:
    script = "import sys; print('out'); sys.stdout.flush(); sys.stderr.write('err\\n'); sys.exit(2)"
    result = await run_command(command(PY, "-c", script), allowed=True)
    assert (result.outcome, result.summary) == (Outcome.FAILED, "exit 2")
    assert result.value == "out\nerr\n"


async def test_a_signal_is_named() -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = await run_command(command(PY, "-c", script), allowed=True)
    assert (result.outcome, result.summary) == (Outcome.FAILED, "killed by SIGTERM")


async def test_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    # The grandchild keeps the output pipe open: only killing the whole session ends it.
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('started', flush=True)\n"
        "time.sleep(30)\n"
    )
    began = time.monotonic()
    result = await run_command(command(PY, "-c", script, timeout="1s"), allowed=True)
    assert time.monotonic() - began < 4
    assert (result.outcome, result.summary, result.value) == (
        Outcome.ERROR,
        "timed out after 1s",
        "started\n",
    )
    # SIGKILL went to the whole session; a process dies (or becomes a zombie) a moment
    # after the signal, later on a loaded machine: wait briefly, never for the 30 s sleep.
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 2
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(pid), pid


async def test_output_is_capped_and_the_command_is_not_blocked() -> None:
    script = "print('x' * 200_000); print('done')"
    result = await run_command(command(PY, "-c", script, max_output=100), allowed=True)
    assert result.outcome == Outcome.OK  # it wrote everything and exited
    assert result.value is not None and len(result.value) <= 100
    assert result.value.endswith("\n[output cut at 100 characters]")
    assert result.value.startswith("xxxx")
    # A result carries at most 2000 characters: the runbook file cannot ask for more.
    big = await run_command(command(PY, "-c", script, max_output=2000), allowed=True)
    assert big.value is not None and len(big.value) <= 2000
    with pytest.raises(ValidationError, match="less than or equal to 2000"):
        command(PY, "-c", script, max_output=50_000)


async def test_a_missing_program_is_an_error() -> None:
    result = await run_command(command("firewatch-no-such-program", "x"), allowed=True)
    assert (result.outcome, result.summary) == (
        Outcome.ERROR,
        "not found: firewatch-no-such-program",
    )


def test_manual_items_are_shown_not_run() -> None:
    item = ManualCheck(name="web-vitals", text="Check Core Web Vitals (LCP, INP, CLS)")
    result = run_manual(item)
    assert (result.outcome, result.summary, result.value) == (
        Outcome.MANUAL,
        "Check Core Web Vitals (LCP, INP, CLS)",
        None,
    )
    long = run_manual(ManualCheck(name="long", text="Look at\nthe slow query log " + "x" * 700))
    assert long.summary.startswith("Look at the slow query log")
    assert len(long.summary) == 500 and long.value is not None


async def test_cancelling_the_activity_kills_the_command(
    runbooks: RunbookActivities, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)"
    )
    env = ActivityEnvironment()
    check = command(PY, "-c", script, timeout="30s")
    task = asyncio.ensure_future(
        env.run(runbooks.run_check, RunCheck(incident_id="INC-1", service="db", check=check))
    )
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)


async def test_commands_not_allowed_through_the_activity(store: Store) -> None:
    acts = RunbookActivities(store, RunbookSettings())
    check = command("true", timeout=timedelta(seconds=5))
    result = await ActivityEnvironment().run(
        acts.run_check, RunCheck(incident_id="INC-1", service="db", check=check)
    )
    assert result.outcome == Outcome.ERROR and "FIREWATCH_RUNBOOK_COMMANDS" in result.summary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
