"""Fixtures for the runbook activities: a store, the activities, real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.runbooks import RunbookActivities
from activities.settings import RunbookSettings
from storage.store import Store
from tests.channels.fake_http import BlackHole
from tests.runbooks.servers import DeployTool, HealthServer, StatusPage


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


@pytest.fixture
def runbooks(store: Store) -> RunbookActivities:
    """Commands allowed, retries without waiting, a deploy token in a private environment."""
    return RunbookActivities(
        store,
        RunbookSettings(runbook_commands=True),
        environ={"DEPLOY_TOKEN": "s3cret-token", "HEALTH_KEY": "hk-123"},
        retry_delays=(),
    )


# One server of each kind per module (starting and stopping one takes half a second), reset
# before each test.


@pytest.fixture(scope="module")
def _health() -> Iterator[HealthServer]:
    with HealthServer() as server:
        assert isinstance(server, HealthServer)
        yield server


@pytest.fixture
def health(_health: HealthServer) -> HealthServer:
    _health.unhang.set()  # a hanging answer of an earlier test goes out now
    _health.unhang.clear()
    _health.mode, _health.delay = "healthy", 0.0
    with _health.lock:
        _health.calls.clear()
    return _health


@pytest.fixture(scope="module")
def _status_page() -> Iterator[StatusPage]:
    with StatusPage() as server:
        assert isinstance(server, StatusPage)
        yield server


@pytest.fixture
def status_page(_status_page: StatusPage) -> StatusPage:
    _status_page.state = "operational"
    return _status_page


@pytest.fixture(scope="module")
def _deploy_tool() -> Iterator[DeployTool]:
    with DeployTool() as server:
        assert isinstance(server, DeployTool)
        yield server


@pytest.fixture
def deploy_tool(_deploy_tool: DeployTool) -> DeployTool:
    _deploy_tool.reset()
    return _deploy_tool


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A host that accepts connections and never answers."""
    with BlackHole() as hole:
        yield hole
