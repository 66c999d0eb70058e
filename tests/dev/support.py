"""Real processes for the dev-server tests: worker and Temporal server subprocesses.

Everything here waits by polling with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.models import DeliveryResult, Notification, Published
from activities.store import OutboxRow, Store
from starter.temporal_setup import ONE_PARTITION_FLAGS, dev_server_flags, workflow_pollers

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = await probe()
            if value:
                return value
        except Exception as exc:  # the thing we wait for may not answer yet
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(interval)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Proc:
    """A subprocess with its output in a log file, stopped for sure by ``close``."""

    def __init__(self, args: list[str], *, log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait for a clean exit; SIGKILL if it does not come."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=10)

    def close(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def worker_env(
    target: str, data: Path, policy: Path, queue: str, namespace: str = "default"
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "FIREWATCH_"))
    }
    env.update(
        TEMPORAL_ADDRESS=target,
        TEMPORAL_NAMESPACE=namespace,
        FIREWATCH_DATA_DIR=str(data),
        FIREWATCH_POLICY=str(policy),
        FIREWATCH_TASK_QUEUE=queue,
        PYTHONUNBUFFERED="1",
    )
    return env


def worker_process(env: dict[str, str], log: Path) -> Proc:
    return Proc([sys.executable, str(ROOT / "worker.py")], log=log, env=env)


async def wait_polling(client: Client, queue: str, proc: Proc, timeout: float = 30) -> None:
    """Until this worker process (by pid) long-polls ``queue`` for workflow tasks."""

    async def probe() -> bool:
        if not proc.alive():
            raise AssertionError(f"worker exited early:\n{log_tail(proc.log)}")
        pollers = await workflow_pollers(client, queue)
        return any(p.identity.startswith(f"{proc.pid}@") for p in pollers)

    try:
        await wait_for(probe, timeout=timeout, what=f"worker {proc.pid} polling {queue}")
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- worker log ---\n{log_tail(proc.log)}") from None


def dev_server_process(db: Path, port: int, log: Path) -> Proc:
    args = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--headless",
        "--log-level",
        "warn",
        *dev_server_flags(),
        *ONE_PARTITION_FLAGS,
    ]
    return Proc(args, log=log)


async def connect_when_up(target: str, proc: Proc, timeout: float = 30) -> Client:
    async def probe() -> Client:
        if not proc.alive():
            raise AssertionError(f"temporal server exited:\n{log_tail(proc.log)}")
        client = await Client.connect(target, data_converter=pydantic_data_converter)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return client

    return await wait_for(probe, timeout=timeout, what=f"temporal server on {target}", interval=0.2)


def outbox(store: Store, incident_id: str | None = None) -> list[OutboxRow]:
    return store.notifications(incident_id, limit=100_000)


def by_kind_recipient(rows: list[OutboxRow]) -> Counter[tuple[str, str]]:
    return Counter((row.kind, row.recipient) for row in rows)


async def deliveries(
    handle: WorkflowHandle[Any, Any],
) -> list[tuple[str, DeliveryResult | None]]:
    """Every notification the workflow decided to send, by idempotency key, with its result.

    From the history: ``deliver_notification`` activities (real channels) and the results
    of ``publish_locally`` local activities (outbox only, one per workflow step).
    """
    converter = pydantic_data_converter.payload_converter
    scheduled: dict[int, Notification] = {}
    results: dict[int, DeliveryResult] = {}
    published: list[tuple[str, DeliveryResult | None]] = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "Notify":
                [note] = converter.from_payloads(attrs.input.payloads, [Notification])
                scheduled[event.event_id] = note
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in scheduled:
                [result] = converter.from_payloads(done.result.payloads, [DeliveryResult])
                results[done.scheduled_event_id] = result
        elif event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name != "core_local_activity" or "result" not in marker.details:
                continue
            [data] = converter.from_payloads(marker.details["data"].payloads, [dict])
            if data["activity_type"] == "Notify and write ticket":
                [batch] = converter.from_payloads(marker.details["result"].payloads, [Published])
                published.extend((r.idempotency_key, r) for r in batch.deliveries)
    sent = [(note.idempotency_key, results.get(event_id)) for event_id, note in scheduled.items()]
    return sent + published
