"""Where the worker and API find their policy and data (``activities.settings``)."""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

from activities.settings import get_settings
from domain.policy import Policy
from domain.policy_file import PolicyError, parse_policy


def data_dir() -> Path:
    return get_settings().data_dir.resolve()


def policy_path() -> Path | None:
    value = get_settings().policy
    return value.resolve() if value else None


def default_policy_text() -> str:
    return resources.files("domain").joinpath("default_policy.yaml").read_text(encoding="utf-8")


class PolicyStore:
    """Loads the policy file, re-reading it when it changes on disk.

    A bad edit to a running system keeps the last good policy for new incidents (and
    says why through ``last_error``), while a bad file at start-up refuses to start.
    """

    def __init__(self, path: Path | None = None, policy: Policy | None = None) -> None:
        self._path = path
        self._fixed = policy
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._policy: Policy | None = policy
        self.last_error: PolicyError | None = None
        if policy is None:
            self._policy = self._read()

    @property
    def source(self) -> str:
        return str(self._path) if self._path else "default_policy.yaml (built in)"

    def _read(self) -> Policy:
        if self._path is None:
            return parse_policy(default_policy_text(), self.source)
        try:
            text = self._path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(self.source, [f"cannot read: {exc.strerror}"]) from exc
        self._mtime = self._path.stat().st_mtime
        return parse_policy(text, self.source)

    def get(self) -> Policy:
        if self._fixed is not None or self._path is None:
            assert self._policy is not None
            return self._policy
        with self._lock:
            try:
                if self._path.stat().st_mtime != self._mtime:
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
