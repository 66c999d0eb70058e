"""What every request handler needs: settings, the Temporal client, policy, secrets, store."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import cast

from fastapi import Request
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from activities.config import PolicyStore
from activities.settings import ApiSettings as ApiSettings  # re-exported for tests
from activities.store import Store
from domain.policy import Integration, IntegrationKind, Policy
from starter.api.metrics import ApiMetrics
from starter.connection import connect_kwargs
from starter.incidents import OpenIncidents
from starter.secrets import Secrets, ensure_secrets


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
        wanted = tuple((i.name, i.kind) for i in self.policy().integrations) + tuple(
            (h.name, "heartbeat") for h in self.policy().heartbeats
        )
        if self._secrets is None or self._secrets_for != wanted:
            with self._lock:
                if self._secrets is None or self._secrets_for != wanted:
                    self._secrets = ensure_secrets(self.data_dir, self.policy())
                    self._secrets_for = wanted
        return self._secrets

    def forget_secrets(self) -> None:
        """Read the secrets file again at the next request (after a rotation)."""
        with self._lock:
            self._secrets = None

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
