"""Where the worker and API find their policy and data (``activities.settings``)."""

from __future__ import annotations

import threading
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from activities.settings import get_settings
from domain.policy import Policy
from domain.policy_file import PolicyError, parse_policy, parse_runbook, with_runbooks
from domain.runbooks import Runbook

# One file per service beside the policy, as the seed keeps them in /monitoring/runbooks/.
RUNBOOKS_DIR = "runbooks"


def data_dir() -> Path:
    return get_settings().data_dir.resolve()


def policy_path() -> Path | None:
    value = get_settings().policy
    return value.resolve() if value else None


def default_policy_text() -> str:
    return resources.files("domain").joinpath("default_policy.yaml").read_text(encoding="utf-8")


def _runbook_files(folder: Traversable) -> list[Traversable]:
    if not folder.is_dir():
        return []
    files = [f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))]
    return sorted(files, key=lambda f: f.name)


def read_runbooks(folder: Traversable, shown_as: str) -> dict[str, Runbook]:
    """``<folder>/<service>.yaml`` -> that service's runbook; errors name the file."""
    runbooks: dict[str, Runbook] = {}
    for file in _runbook_files(folder):
        source = f"{shown_as}/{file.name}"
        service = file.name.rsplit(".", 1)[0]
        if service in runbooks:
            raise PolicyError(source, [f"a second runbook for service {service!r}"])
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(source, [f"cannot read: {exc.strerror}"]) from exc
        runbooks[service] = parse_runbook(text, source)
    return runbooks


def default_policy() -> Policy:
    """The built-in policy with the seed's four runbooks (``domain/default_runbooks``)."""
    source = "default_policy.yaml (built in)"
    folder = resources.files("domain").joinpath("default_runbooks")
    runbooks = read_runbooks(folder, "domain/default_runbooks")
    return with_runbooks(parse_policy(default_policy_text(), source), runbooks, source)


class PolicyStore:
    """Loads the policy file, re-reading it when it changes on disk.

    A bad edit to a running system keeps the last good policy for new incidents (and
    says why through ``last_error``), while a bad file at start-up refuses to start.
    """

    def __init__(self, path: Path | None = None, policy: Policy | None = None) -> None:
        self._path = path
        self._fixed = policy
        self._lock = threading.Lock()
        self._mtime: tuple[tuple[str, int], ...] | None = None
        self._policy: Policy | None = policy
        self.last_error: PolicyError | None = None
        if policy is None:
            self._policy = self._read()

    @property
    def source(self) -> str:
        return str(self._path) if self._path else "default_policy.yaml (built in)"

    def _read(self) -> Policy:
        if self._path is None:
            return default_policy()
        try:
            text = self._path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(self.source, [f"cannot read: {exc.strerror}"]) from exc
        self._mtime = self._stamp()
        folder = self._path.parent / RUNBOOKS_DIR
        runbooks = read_runbooks(folder, str(folder))
        return with_runbooks(parse_policy(text, self.source), runbooks, self.source)

    def _stamp(self) -> tuple[tuple[str, int], ...]:
        """Changes when the policy file or any runbook file beside it changes."""
        assert self._path is not None
        folder = self._path.parent / RUNBOOKS_DIR
        files = [self._path, *(sorted(folder.glob("*.y*ml")) if folder.is_dir() else [])]
        return tuple((str(f), f.stat().st_mtime_ns) for f in files)

    def get(self) -> Policy:
        if self._fixed is not None or self._path is None:
            assert self._policy is not None
            return self._policy
        with self._lock:
            try:
                if self._stamp() != self._mtime:
                    self._policy = self._read()
                    self.last_error = None
            except PolicyError as exc:
                self.last_error = exc
            except OSError:
                pass
            assert self._policy is not None
            return self._policy


def policy_store_from_env() -> PolicyStore:
    return PolicyStore(policy_path())
