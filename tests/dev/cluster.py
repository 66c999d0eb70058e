"""Several Firewatch hosts on one machine: worker and API processes sharing one database.

Each process gets a data directory of its own, as it would on its own host: whatever they
must agree on (INC ids, the delivery ledger, documents, secrets) has to be in the
database, not in a local file.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from tests.dev.support import (
    ROOT,
    Proc,
    free_port,
    log_tail,
    wait_for,
    wait_polling,
    worker_env,
    worker_process,
)

API_TOKEN = "scale-out-api-token-0123456789abcdef"


@dataclass
class Cluster:
    client: Client
    tmp: Path
    policy: Path
    queue: str
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Proc] = field(default_factory=list)
    apis: list[tuple[Proc, str]] = field(default_factory=list)  # (process, base URL)

    def env(self, host: str) -> dict[str, str]:
        env = worker_env(
            self.client.service_client.config.target_host,
            self.tmp / host / "data",
            self.policy,
            self.queue,
            namespace=self.client.namespace,
        )
        env.update(
            FIREWATCH_DATABASE_URL=self.database_url,
            FIREWATCH_API_TOKEN=API_TOKEN,
            **self.extra_env,
        )
        return env

    async def start_worker(self, host: str) -> Proc:
        proc = worker_process(self.env(host), self.tmp / host / "worker.log").start()
        self.workers.append(proc)
        await wait_polling(self.client, self.queue, proc)
        return proc

    async def start_api(self, host: str) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "starter.api.app:app"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        proc = Proc(argv, log=self.tmp / host / "api.log", env=self.env(host)).start()
        url = f"http://127.0.0.1:{port}"
        self.apis.append((proc, url))

        async def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"API exited early:\n{log_tail(proc.log)}")
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{url}/health")).status_code == 200

        await wait_for(healthy, timeout=30, what=f"API on {url}")
        return url

    def close(self) -> None:
        for proc in [*self.workers, *(p for p, _ in self.apis)]:
            with contextlib.suppress(Exception):
                proc.close()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


__all__ = ["ROOT", "Cluster", "auth"]
