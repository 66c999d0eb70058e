"""Helpers for the HTTP API tests: a real uvicorn server and a real worker, both on loopback.

The API and its worker run in a background thread with their own event loop, so they
keep serving while a test blocks (schemathesis, the pagerduty clients are synchronous).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from google.protobuf.duration_pb2 import Duration
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.config import PolicyStore
from activities.store import Store
from domain.incident import IncidentState
from domain.policy import Integration, Policy, Severity
from starter import cli
from starter.api.app import create_app
from starter.api.context import ApiSettings
from starter.secrets import Secrets, load_secrets
from starter.temporal_setup import ensure_search_attributes
from worker import ACTIVITY_THREADS, build_worker
from workflows.incident import IncidentWorkflow

T = TypeVar("T")

# Extra integrations on top of the default policy's four (one per format).
EXTRA_INTEGRATIONS = (
    Integration(name="am-manual", kind="alertmanager", service="batch", auto_resolve=False),
    Integration(name="pd-db", kind="pagerduty", service="database", default_severity=Severity.P2),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_policy(base: Policy) -> Policy:
    return base.model_copy(update={"integrations": (*base.integrations, *EXTRA_INTEGRATIONS)})


@dataclass
class ApiStack:
    """uvicorn + Firewatch worker in one background thread (own loop, own Temporal clients)."""

    target: str
    namespace: str
    policy: Policy
    data: Path
    with_worker: bool = True
    settings: ApiSettings = field(default_factory=ApiSettings)
    port: int = 0
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: uvicorn.Server | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    def secrets(self) -> Secrets:
        return load_secrets(self.data)

    def key(self, integration: str) -> str:
        secret = self.secrets().for_integration(integration)
        assert secret is not None, integration
        return secret.key

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets().api_token}"}

    def outbox(self, incident_id: str) -> list[Any]:
        return Store(self.data).notifications(incident_id)

    def start(self) -> ApiStack:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="api-stack", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"API stack did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(setattr, self._server, "should_exit", True)
        if self._thread is not None:
            self._thread.join(30)

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(sock))
        except BaseException as err:
            self._error = err
            self._ready.set()

    async def _main(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        retry = RetryConfig(max_elapsed_time_millis=int(self.settings.temporal_retry_s * 1000))
        # Lazy: the API must start and answer 503 even when Temporal is down.
        api_client = await Client.connect(
            self.target,
            namespace=self.namespace,
            data_converter=pydantic_data_converter,
            lazy=True,
            retry_config=retry,
        )
        app = create_app(
            client=api_client, policy=self.policy, data=self.data, settings=self.settings
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not serving.done():
            await asyncio.sleep(0.02)
        if not self.with_worker:
            self._ready.set()
            await serving
            return
        worker_client = await Client.connect(
            self.target, namespace=self.namespace, data_converter=pydantic_data_converter
        )
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as pool:
            worker = build_worker(
                worker_client,
                policy=PolicyStore(policy=self.policy),
                data=self.data,
                task_queue=self.task_queue,
                executor=pool,
            )
            async with worker:
                self._ready.set()
                await serving


async def register_namespace(env: WorkflowEnvironment, name: str) -> Client:
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=7 * 86400)
        )
    )
    client = await Client.connect(
        env.client.service_client.config.target_host,
        namespace=name,
        data_converter=pydantic_data_converter,
    )
    await ensure_search_attributes(client)
    return client


@dataclass
class ApiEnv:
    stack: ApiStack
    client: Client  # the tests' own client, in the API's namespace

    @property
    def url(self) -> str:
        return self.stack.url

    async def state(self, workflow_id: str) -> IncidentState | None:
        result: IncidentState | None = await self.client.get_workflow_handle(workflow_id).query(
            IncidentWorkflow.state
        )
        return result

    async def count(self, query: str = "WorkflowType = 'IncidentWorkflow'") -> int:
        return (await self.client.count_workflows(query)).count

    async def runs(self, workflow_id: str) -> int:
        return await self.count(f"WorkflowId = '{workflow_id}'")

    async def settled_count(self) -> int:
        """``count()`` once everything started before this call is visible.

        Visibility lags the start; a barrier workflow (another type, on a queue nobody polls)
        started now is recorded after every earlier start (one history shard on the dev
        server, whose visibility tasks are processed in order), so once it is visible the
        count is settled. No fixed sleep.
        """
        barrier = f"visibility-barrier-{uuid.uuid4().hex[:12]}"
        handle = await self.client.start_workflow(
            "VisibilityBarrier", id=barrier, task_queue=f"nobody-{barrier}"
        )
        await handle.terminate("barrier reached")
        query = f"WorkflowId = '{barrier}' AND ExecutionStatus = 'Terminated'"
        await eventually(lambda: self.count(query))
        return await self.count()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20, every: float = 0.2
) -> T:
    """Poll until ``probe`` returns something truthy (visibility and workers lag a little)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")
        await asyncio.sleep(every)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    """A sample's value from GET /metrics (0 when the series does not exist yet)."""
    text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@asynccontextmanager
async def running_api(
    dev_env: WorkflowEnvironment,
    policy: Policy,
    data: Path,
    name: str,
    *,
    with_worker: bool = True,
) -> AsyncIterator[ApiEnv]:
    """An API (and its worker) on loopback, in a namespace and task queue of its own on the
    session's dev server: INC numbers are per data dir, so suites must not share one."""
    namespace = f"fw-{name}-{uuid.uuid4().hex[:8]}"
    client = await register_namespace(dev_env, namespace)
    stack = ApiStack(
        target=dev_env.client.service_client.config.target_host,
        namespace=namespace,
        policy=policy,
        data=data,
        with_worker=with_worker,
        settings=ApiSettings(task_queue=f"fw-{name}-{uuid.uuid4().hex[:8]}", worker_timeout_s=15),
    )
    await asyncio.to_thread(stack.start)
    try:
        yield ApiEnv(stack=stack, client=client)
    finally:
        await asyncio.to_thread(stack.stop)


CliRun = Callable[..., Result]


def cli_against(stack: ApiStack, data_dir: Path, user: str | None = None) -> CliRun:
    """``firewatch`` (in process) against ``stack``'s API, acting as ``user``."""
    runner = CliRunner()
    env = {
        "FIREWATCH_API_URL": stack.url,
        "FIREWATCH_API_TOKEN": stack.secrets().api_token,
        "FIREWATCH_DATA_DIR": str(data_dir),
        "FIREWATCH_USER": user,
    }

    def invoke(*args: str, **extra_env: str) -> Result:
        result = runner.invoke(cli.app, list(args), env={**env, **extra_env})
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    return invoke
