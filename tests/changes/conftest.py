"""The change feed's tests run the real API (``ApiStack``, as the API tests do) on loopback.

The feed is Firewatch's database, not Temporal: the stack here has no worker and its
Temporal address is a port nobody listens on, so every test also shows that changes are
taken and listed while Temporal is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.changes import Change
from domain.policy import Policy
from starter.api.context import ApiSettings
from storage.store import Store
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, free_port

Run = CliRun


@pytest.fixture(scope="module")
def feed(default_policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    stack = ApiStack(
        target=f"127.0.0.1:{free_port()}",
        namespace="default",
        policy=api_policy(default_policy),
        data=tmp_path_factory.mktemp("changes-data"),
        with_worker=False,
        settings=ApiSettings(temporal_retry_s=0.3, retry_after_s=2),
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def http(feed: ApiStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=feed.url, headers=feed.api_headers(), timeout=30) as client:
        yield client


def stored(feed: ApiStack, service: str | None = None) -> list[Change]:
    """Every change in the feed's database (of one service), newest first."""
    store = Store(feed.data)
    try:
        return store.changes(service, limit=100_000)
    finally:
        store.database.close()


def add_pagerduty_integration(http: httpx.Client, service: str) -> str:
    """A pagerduty integration for ``service``, added at run time: its routing key."""
    response = http.post("/integrations", json={"kind": "pagerduty", "service": service})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


@pytest.fixture
def firewatch(feed: ApiStack, tmp_path: Path) -> Run:
    return cli_against(feed, tmp_path)
