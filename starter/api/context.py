"""What every request handler needs: settings, the Temporal client, policy, secrets, store."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from fastapi import Request
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from activities.config import PolicyStore
from activities.store import Store
from domain.policy import Integration, IntegrationKind, Policy
from starter.api.metrics import ApiMetrics
from starter.connection import TASK_QUEUE, connect_kwargs
from starter.incidents import OpenIncidents
from starter.secrets import Secrets, ensure_secrets

MAX_BODY_BYTES = 512 * 1024  # PagerDuty's limit for an Events API v2 request


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class ApiSettings:
    task_queue: str = TASK_QUEUE
    # Requests handled at once; beyond that the API answers 429 (503 for webhooks).
    max_in_flight: int = 256
    max_body_bytes: int = MAX_BODY_BYTES
    retry_after_s: int = 5
    # How long Temporal's client retries an unavailable server before we answer 503.
    temporal_retry_s: float = 2.0
    # Waiting for a worker (incident id, queries, updates) before answering 503.
    worker_timeout_s: float = 20.0

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(
            task_queue=os.environ.get("FIREWATCH_TASK_QUEUE") or TASK_QUEUE,
            max_in_flight=_env_int("FIREWATCH_API_MAX_IN_FLIGHT", cls.max_in_flight),
            retry_after_s=_env_int("FIREWATCH_API_RETRY_AFTER", cls.retry_after_s),
            temporal_retry_s=_env_float("FIREWATCH_API_TEMPORAL_RETRY", cls.temporal_retry_s),
            worker_timeout_s=_env_float("FIREWATCH_API_WORKER_TIMEOUT", cls.worker_timeout_s),
        )


class TemporalGate:
    """Hands out one Temporal client, created lazily.

    A lazy client does not dial until its first call and redials after the server
    comes back, so the API starts while Temporal is down and recovers on its own.
    """

    def __init__(self, client: Client | None, settings: ApiSettings) -> None:
        self._client = client
        self._settings = settings
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                kwargs = connect_kwargs()
                target = kwargs.pop("target_host")
                retry = RetryConfig(
                    max_elapsed_time_millis=int(self._settings.temporal_retry_s * 1000)
                )
                self._client = await Client.connect(
                    target,
                    data_converter=pydantic_data_converter,
                    lazy=True,
                    retry_config=retry,
                    **kwargs,
                )
            return self._client

    @property
    def target(self) -> str:
        if self._client is not None:
            return self._client.service_client.config.target_host
        return str(connect_kwargs()["target_host"])

    @property
    def namespace(self) -> str:
        if self._client is not None:
            return self._client.namespace
        return str(connect_kwargs()["namespace"])


class ApiContext:
    def __init__(
        self,
        *,
        settings: ApiSettings,
        gate: TemporalGate,
        policy: PolicyStore,
        data_dir: Path,
        metrics: ApiMetrics,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.policy_store = policy
        self.data_dir = data_dir
        self.metrics = metrics
        self.open_incidents = OpenIncidents()  # which alerts can join with a plain signal
        self._secrets: Secrets | None = None
        self._secrets_for: tuple[tuple[str, str], ...] | None = None
        self._store: Store | None = None
        self._lock = threading.Lock()

    def policy(self) -> Policy:
        return self.policy_store.get()

    def secrets(self) -> Secrets:
        """Secrets for the current policy; integrations added to a live policy get keys."""
        wanted = tuple((i.name, i.kind) for i in self.policy().integrations)
        if self._secrets is None or self._secrets_for != wanted:
            with self._lock:
                if self._secrets is None or self._secrets_for != wanted:
                    self._secrets = ensure_secrets(self.data_dir, self.policy())
                    self._secrets_for = wanted
        return self._secrets

    def integrations(self, *kinds: IntegrationKind) -> list[Integration]:
        return [i for i in self.policy().integrations if not kinds or i.kind in kinds]

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.data_dir)
        return self._store

    async def client(self) -> Client:
        return await self.gate.client()


def get_ctx(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.ctx)
