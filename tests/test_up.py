"""End-to-end tests of the ``make up`` supervisor (``python -m starter.up``).

Each run uses a temporary data dir and free ports, and the real ``worker.py``
and ``starter.api.app``. The supervisor must decide "embedded Temporal" from
the environment it was given, so every ``TEMPORAL_*`` variable is removed and
``XDG_CONFIG_HOME`` points at an empty dir (no ``temporal.toml`` profile).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from starter.connection import connect_kwargs, external_temporal_configured
from starter.temporal_setup import (
    SEARCH_ATTRIBUTES,
    SearchAttributeConflict,
    dev_server_flags,
    ensure_retention,
    ensure_search_attributes,
    workflow_pollers,
)

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
MARKER_TASK_QUEUE = "up-test-marker"  # nobody polls it: the workflow just stays open


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it has exited for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@dataclass
class UpRun:
    """One ``python -m starter.up`` process and its log."""

    data_dir: Path
    log_path: Path
    temporal_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, xdg_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        env.pop("FIREWATCH_TEMPORAL_UI_URL", None)
        env.update(
            FIREWATCH_DATA_DIR=str(self.data_dir),
            FIREWATCH_TEMPORAL_PORT=str(self.temporal_port),
            FIREWATCH_UI_PORT=str(self.ui_port),
            FIREWATCH_API_HOST="127.0.0.1",
            FIREWATCH_API_PORT=str(self.api_port),
            XDG_CONFIG_HOME=str(xdg_dir),
            PYTHONUNBUFFERED="1",
        )
        assert not external_temporal_configured(env)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "starter.up"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Like a terminal session of its own; we deliver SIGINT ourselves.
                start_new_session=True,
            )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pids(self) -> dict[str, int]:
        return {
            m.group(1): int(m.group(2))
            for m in re.finditer(r"^\[up\] started (\w+) \(pid (\d+)\)", self.output(), re.M)
        }

    def fail(self, why: str) -> None:
        out = self.output()
        # A Go panic's reason is above its long stack: keep those lines whatever the tail cuts.
        reasons = [ln for ln in out.splitlines() if "panic:" in ln or "rror:" in ln][:10]
        said = "\n".join(reasons)
        pytest.fail(f"{why}\n--- reasons ---\n{said}\n--- supervisor output ---\n{out[-6000:]}")

    def check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            self.fail(f"supervisor exited early with {self.proc.returncode}")

    async def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.fail(f"supervisor still running {timeout:.0f} s later")
            await asyncio.sleep(0.2)
        return self.proc.returncode

    def kill_everything(self) -> None:
        """Last-resort cleanup so a failing test leaves no servers behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.child_pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def until(
    run: UpRun, what: str, probe: Callable[[], Awaitable[T]], timeout: float = READY_TIMEOUT_S
) -> T:
    """Poll ``probe`` until it returns something truthy (exceptions count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        run.check_running()
        try:
            result = await probe()
            if result:
                return result
            last = result
        except Exception as err:
            last = err
        await asyncio.sleep(0.5)
    run.fail(f"timed out waiting for {what} (last: {last!r})")
    raise AssertionError("unreachable")


async def wait_until_ready(run: UpRun) -> Client:
    """UI answers, search attributes registered, worker polling, API answering."""

    async def ui() -> bool:
        async with httpx.AsyncClient(timeout=3) as http:
            return (await http.get(f"http://127.0.0.1:{run.ui_port}/")).status_code == 200

    await until(run, "Temporal UI", ui)

    async def client() -> Client:
        return await Client.connect(run.address)

    temporal = await until(run, "Temporal gRPC", client)

    async def search_attributes() -> bool:
        resp = await temporal.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        have = dict(resp.custom_attributes)
        return all(have.get(name) == int(kind) for name, kind in SEARCH_ATTRIBUTES.items())

    await until(run, "search attributes", search_attributes)

    async def pollers() -> bool:
        return bool(await workflow_pollers(temporal, "firewatch"))

    await until(run, "a worker polling task queue firewatch", pollers)

    async def api() -> bool:
        async with httpx.AsyncClient(timeout=3) as http:
            await http.get(f"http://127.0.0.1:{run.api_port}/openapi.json")
        return True  # any HTTP answer means uvicorn serves the app

    await until(run, "the API", api)

    async def banner() -> bool:
        return "Firewatch is up" in run.output()

    await until(run, "the banner", banner)
    return temporal


async def stop_and_check(run: UpRun, sig: signal.Signals = signal.SIGINT) -> None:
    """Ctrl-C or SIGTERM: every child exits, in order, and the supervisor exits 0."""
    assert run.proc is not None
    pids = run.child_pids()
    assert set(pids) == {"temporal", "worker", "api"}, pids
    run.proc.send_signal(sig)
    rc = await run.wait_exit()
    out = run.output()
    assert rc == 0, out[-8000:]
    still_alive = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not still_alive, f"children survived the supervisor: {still_alive}\n{out[-8000:]}"
    order = [m.group(1) for m in re.finditer(r"^\[up\] (\w+) stopped", out, re.M)]
    assert order[-3:] == ["api", "worker", "temporal"], order


@pytest.fixture
def xdg_dir(tmp_path: Path) -> Path:
    path = tmp_path / "xdg"
    path.mkdir()
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[UpRun]]:
    created: list[UpRun] = []
    yield created
    for run in created:
        run.kill_everything()


def new_run(runs: list[UpRun], data_dir: Path, tmp_path: Path) -> UpRun:
    run = UpRun(data_dir=data_dir, log_path=tmp_path / f"up-{len(runs)}.log")
    runs.append(run)
    return run


async def test_up_starts_stops_in_order_and_restarts_on_the_same_db(
    tmp_path: Path, xdg_dir: Path, runs: list[UpRun]
) -> None:
    data_dir = tmp_path / "data"

    first = new_run(runs, data_dir, tmp_path)
    first.start(xdg_dir)
    client = await wait_until_ready(first)
    desc = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert desc.config.workflow_execution_retention_ttl.ToTimedelta().days >= 120
    # Issue 14: the monthly report's Schedule exists after `make up`, on the 1st at 09:00
    # in the policy's zone, starting MonthlyReportWorkflow on Firewatch's task queue.
    monthly = await until(
        first,
        "the monthly-report schedule",
        lambda: client.get_schedule_handle("monthly-report").describe(),
    )
    calendar = monthly.schedule.spec.calendars[0]
    assert (calendar.day_of_month[0].start, calendar.hour[0].start) == (1, 9)
    assert monthly.schedule.spec.time_zone_name == "America/New_York"
    action = monthly.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("MonthlyReportWorkflow", "firewatch")
    # Something only the database remembers, to prove the restart reuses it.
    marker_id = f"up-test-{uuid.uuid4()}"
    await client.start_workflow("UpTestMarker", id=marker_id, task_queue=MARKER_TASK_QUEUE)
    await stop_and_check(first)
    assert (data_dir / "temporal.db").is_file()

    second = new_run(runs, data_dir, tmp_path)
    second.start(xdg_dir)
    client = await wait_until_ready(second)
    marker = await client.get_workflow_handle(marker_id).describe()
    assert marker.status == WorkflowExecutionStatus.RUNNING
    assert "search attributes: all present" in second.output()

    # docker-compose's setup job: the same preparation against an external Temporal.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.update(
        TEMPORAL_ADDRESS=second.address,
        FIREWATCH_DATA_DIR=str(data_dir),
        XDG_CONFIG_HOME=str(xdg_dir),
    )
    setup = subprocess.run(
        [sys.executable, "-m", "starter.up", "--setup-only"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if setup.returncode != 0:
        # Once in about nine full runs this could not reach the running Temporal: keep
        # what the supervisor said then, and whether it was still up.
        second.check_running()
        second.fail(f"--setup-only exited {setup.returncode}:\n{setup.stdout}{setup.stderr}")
    assert "search attributes: all present" in setup.stdout
    assert "started" not in setup.stdout

    await stop_and_check(second, signal.SIGTERM)


async def test_up_stops_everything_when_a_child_dies(
    tmp_path: Path, xdg_dir: Path, runs: list[UpRun]
) -> None:
    run = new_run(runs, tmp_path / "data", tmp_path)
    run.start(xdg_dir)
    await wait_until_ready(run)
    pids = run.child_pids()
    os.kill(pids["worker"], signal.SIGKILL)
    rc = await run.wait_exit()
    out = run.output()
    assert rc != 0, out[-8000:]
    assert "worker exited unexpectedly" in out
    assert not [name for name, pid in pids.items() if alive(pid)], out[-8000:]


async def test_up_refuses_a_busy_temporal_port(
    tmp_path: Path, xdg_dir: Path, runs: list[UpRun]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        run = new_run(runs, tmp_path / "data", tmp_path)
        run.temporal_port = squatter.getsockname()[1]
        run.start(xdg_dir)
        rc = await run.wait_exit(timeout=60)
    out = run.output()
    assert rc == 1, out
    assert f"port {run.temporal_port} (Temporal gRPC)" in out
    assert "already in use" in out
    assert "started temporal" not in out


async def test_up_refuses_a_data_dir_in_use(
    tmp_path: Path, xdg_dir: Path, runs: list[UpRun]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with (data_dir / ".up.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = new_run(runs, data_dir, tmp_path)
        run.start(xdg_dir)
        rc = await run.wait_exit(timeout=60)
    out = run.output()
    assert rc == 1, out
    assert "is already in use by `make up`" in out
    assert "started temporal" not in out


def test_embedded_decision_and_connect_resolution(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert not external_temporal_configured(base)
    assert connect_kwargs(environ=base) == {"target_host": "127.0.0.1:7233", "namespace": "default"}

    env = {**base, "TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "ops"}
    assert external_temporal_configured(env)
    assert connect_kwargs(environ=env)["target_host"] == "temporal:7233"
    assert connect_kwargs(environ=env)["namespace"] == "ops"
    explicit = connect_kwargs(address="127.0.0.1:1", namespace="x", environ=env)
    assert (explicit["target_host"], explicit["namespace"]) == ("127.0.0.1:1", "x")

    # A TEMPORAL_CONFIG_FILE that does not exist is not a profile.
    assert not external_temporal_configured({**base, "TEMPORAL_CONFIG_FILE": "/nonexistent.toml"})

    toml = tmp_path / "xdg" / "temporalio" / "temporal.toml"
    toml.parent.mkdir(parents=True)
    toml.write_text('[profile.default]\naddress = "prof:7233"\nnamespace = "profns"\n')
    assert external_temporal_configured(base)
    kwargs = connect_kwargs(environ=base)
    assert (kwargs["target_host"], kwargs["namespace"]) == ("prof:7233", "profns")
    # Environment beats the profile, explicit arguments beat both.
    kwargs = connect_kwargs(environ={**base, "TEMPORAL_ADDRESS": "env:7233"})
    assert (kwargs["target_host"], kwargs["namespace"]) == ("env:7233", "profns")
    assert connect_kwargs(address="arg:1", environ=base)["target_host"] == "arg:1"


def test_compose_registers_the_same_search_attributes() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["temporal"]["command"]
    flags = [
        (flag, value) for flag, value in itertools.pairwise(command) if flag == "--search-attribute"
    ]
    assert flags == list(zip(dev_server_flags()[::2], dev_server_flags()[1::2], strict=True))


async def test_namespace_preparation_is_idempotent_and_race_tolerant() -> None:
    """Concurrent supervisors/setup jobs on a bare namespace all succeed; types are checked."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_log_level="error",
        dev_server_extra_args=["--namespace", "conflict"],
    )
    try:
        client = env.client
        results = await asyncio.gather(*(ensure_search_attributes(client) for _ in range(3)))
        assert set().union(*results) == set(SEARCH_ATTRIBUTES)
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        assert {k: resp.custom_attributes[k] for k in SEARCH_ATTRIBUTES} == {
            k: int(v) for k, v in SEARCH_ATTRIBUTES.items()
        }
        assert await ensure_search_attributes(client) == []

        assert await ensure_retention(client, days=120) == timedelta(days=120)
        # Never lowers a longer retention someone configured on purpose.
        assert await ensure_retention(client, days=30) == timedelta(days=120)

        # Someone registered one of our names with another type: say so, loudly.
        other = await Client.connect(client.service_client.config.target_host, namespace="conflict")
        await other.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="conflict",
                search_attributes={
                    "IncidentFalsePositive": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                },
            )
        )
        with pytest.raises(SearchAttributeConflict, match="IncidentFalsePositive"):
            await ensure_search_attributes(other)
    finally:
        await env.shutdown()
