"""Secrets of a Firewatch installation: the API token and one key per integration.

They live in ``<data dir>/secrets.json`` (mode 0600), generated on the first ``make up``
and never written to the repository, logs or workflow payloads. Integrations added to
the policy later get keys on the next start; existing keys never change, so monitoring
tools keep working across restarts.

Integrations added at run time (``firewatch integrations add``, ``POST /integrations``)
live in ``<data dir>/integrations.json`` (mode 0600), each with its own key: one key per
service, as in PagerDuty, without editing the policy file. The API re-reads that file
whenever it changes on disk, so every API process sees an addition or removal at once.

``FIREWATCH_API_TOKEN`` overrides the stored API token (e.g. one shared by a team).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.settings import get_settings
from domain.policy import Integration, IntegrationKind, Policy

SECRETS_FILE = "secrets.json"
ADDED_FILE = "integrations.json"

log = logging.getLogger(__name__)


class IntegrationSecret(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: IntegrationKind
    # PagerDuty: the 32-hex-digit routing key. Others: the Bearer token.
    key: str
    # Grafana only: the optional HMAC signature secret.
    hmac_secret: str | None = None

    def __repr__(self) -> str:  # keep keys out of tracebacks and logs
        return f"IntegrationSecret(kind={self.kind!r}, key=***)"

    __str__ = __repr__


class Secrets(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_token: str
    integrations: dict[str, IntegrationSecret] = Field(default_factory=dict)
    # Signs the calendar feeds' URL tokens (``feed_token``); rotating it revokes them all.
    calendar_secret: str | None = None
    # Heartbeat monitor name -> the Bearer token of its pings (``POST /heartbeats/<name>``).
    heartbeats: dict[str, str] = Field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Secrets(api_token=***, integrations={sorted(self.integrations)},"
            f" heartbeats={sorted(self.heartbeats)})"
        )

    __str__ = __repr__

    def for_integration(self, name: str) -> IntegrationSecret | None:
        return self.integrations.get(name)

    def for_heartbeat(self, name: str) -> str | None:
        return self.heartbeats.get(name)


def new_integration_secret(kind: IntegrationKind) -> IntegrationSecret:
    if kind == "pagerduty":
        # PagerDuty routing keys are 32 characters; clients such as pdpyras check that.
        return IntegrationSecret(kind=kind, key=secrets.token_hex(16))
    hmac_secret = secrets.token_urlsafe(32) if kind == "grafana" else None
    return IntegrationSecret(kind=kind, key=secrets.token_urlsafe(32), hmac_secret=hmac_secret)


def secrets_path(data_dir: Path) -> Path:
    return data_dir / SECRETS_FILE


def _read(path: Path) -> Secrets | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return Secrets.model_validate_json(text)


def _write_atomic(path: Path, value: BaseModel) -> None:
    """Write to a 0600 temp file in the same directory, fsync, then rename over."""
    fd, tmp = tempfile.mkstemp(prefix=".secrets-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(value.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself must survive a crash too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    # The supervisor, the API and the CLI may all create secrets at the same moment;
    # without the lock two of them could each generate (and hand out) different keys.
    with open(data_dir / ".secrets.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _with_env(value: Secrets) -> Secrets:
    token = get_settings().api_token  # FIREWATCH_API_TOKEN
    if token is None:
        return value
    return value.model_copy(update={"api_token": token.get_secret_value()})


def _heartbeat_names(policy: Policy | None) -> tuple[str, ...]:
    if policy is None:
        from activities.config import policy_store_from_env

        policy = policy_store_from_env().get()
    return tuple(monitor.name for monitor in policy.heartbeats)


def _integrations(policy: Policy | None) -> tuple[Integration, ...]:
    if policy is None:
        from activities.config import policy_store_from_env

        policy = policy_store_from_env().get()
    return policy.integrations


def ensure_secrets(data_dir: Path, policy: Policy | None = None) -> Secrets:
    """Create missing secrets (never replacing existing ones) and return them all.

    ``policy`` defaults to the one the environment configures (``FIREWATCH_POLICY``).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    wanted = _integrations(policy)
    monitors = _heartbeat_names(policy)
    path = secrets_path(data_dir)
    with _locked(data_dir):
        current = _read(path)
        stored = dict(current.integrations) if current else {}
        changed = current is None
        for integration in wanted:
            have = stored.get(integration.name)
            if have is None or have.kind != integration.kind:
                # A kind change needs a key of the other shape (PagerDuty: 32 hex digits).
                stored[integration.name] = new_integration_secret(integration.kind)
                changed = True
            elif integration.kind == "grafana" and have.hmac_secret is None:
                stored[integration.name] = have.model_copy(
                    update={"hmac_secret": secrets.token_urlsafe(32)}
                )
                changed = True
        token = current.api_token if current else secrets.token_urlsafe(32)
        calendar = current.calendar_secret if current else None
        if calendar is None:
            calendar, changed = secrets.token_urlsafe(32), True
        beats = dict(current.heartbeats) if current else {}
        for name in monitors:
            if name not in beats:  # one token per monitor, kept for good
                beats[name] = secrets.token_urlsafe(32)
                changed = True
        value = Secrets(
            api_token=token, integrations=stored, calendar_secret=calendar, heartbeats=beats
        )
        if changed:
            _write_atomic(path, value)
        else:
            # Tighten permissions left loose by hand edits or a copied data dir.
            with contextlib.suppress(OSError):
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
    return _with_env(value)


def rotate_calendar_secret(data_dir: Path, policy: Policy | None = None) -> Secrets:
    """A new calendar secret: every feed URL handed out so far stops working."""
    current = ensure_secrets(data_dir, policy)
    with _locked(data_dir):
        stored = _read(secrets_path(data_dir)) or current
        value = stored.model_copy(update={"calendar_secret": secrets.token_urlsafe(32)})
        _write_atomic(secrets_path(data_dir), value)
    return _with_env(value)


def feed_token(value: Secrets, feed: str) -> str:
    """The URL token of one calendar feed (``primary.ics``, ``people/dave.ics``): each feed
    has its own, so sharing one person's feed URL opens no other."""
    key = (value.calendar_secret or "").encode()
    return hmac.new(key, feed.encode(), hashlib.sha256).hexdigest()[:32]


def load_secrets(data_dir: Path) -> Secrets:
    """The stored secrets (with the env override); FileNotFoundError before the first run."""
    value = _read(secrets_path(data_dir))
    if value is None:
        raise FileNotFoundError(f"{secrets_path(data_dir)} does not exist yet: run `make up` once")
    return _with_env(value)


# ---- integrations added at run time -------------------------------------------------------


class AddedIntegration(BaseModel):
    """An integration added at run time, with its key (kept together: one atomic write)."""

    model_config = ConfigDict(frozen=True)

    integration: Integration
    secret: IntegrationSecret
    added_at: datetime

    def __repr__(self) -> str:
        return f"AddedIntegration(integration={self.integration!r}, secret=***)"

    __str__ = __repr__


class AddedIntegrations(BaseModel):
    model_config = ConfigDict(frozen=True)

    integrations: tuple[AddedIntegration, ...] = ()

    def get(self, name: str) -> AddedIntegration | None:
        return next((a for a in self.integrations if a.integration.name == name), None)


class IntegrationConflict(ValueError):
    """The name is taken (by the policy file or by an added integration)."""


class IntegrationNotFound(LookupError):
    pass


class IntegrationStoreError(RuntimeError):
    """``integrations.json`` cannot be read (a bad hand edit): nothing is changed."""


def added_path(data_dir: Path) -> Path:
    return data_dir / ADDED_FILE


def _read_added(path: Path) -> AddedIntegrations:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AddedIntegrations()
    except OSError as exc:
        raise IntegrationStoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return AddedIntegrations.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise IntegrationStoreError(f"{path} is invalid: {where}: {first['msg']}") from None


def load_added(data_dir: Path) -> AddedIntegrations:
    """The integrations added at run time (none before the first ``add``)."""
    return _read_added(added_path(data_dir))


def add_integration(
    data_dir: Path, integration: Integration, taken: Iterable[str] = ()
) -> AddedIntegration:
    """Store a new integration with a fresh key. ``taken``: the policy file's names.

    Raises IntegrationConflict when the name is in use; nothing is written then.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = added_path(data_dir)
    with _locked(data_dir):
        current = _read_added(path)
        name = integration.name
        if name in set(taken):
            raise IntegrationConflict(
                f"integration {name!r} is defined in the policy file; pick another name"
            )
        if current.get(name) is not None:
            raise IntegrationConflict(f"integration {name!r} exists already; pick another name")
        added = AddedIntegration(
            integration=integration,
            secret=new_integration_secret(integration.kind),
            added_at=datetime.now(UTC),
        )
        _write_atomic(path, AddedIntegrations(integrations=(*current.integrations, added)))
    return added


def remove_integration(data_dir: Path, name: str) -> AddedIntegration:
    """Delete an added integration and its key: senders using the key are refused from now.

    Raises IntegrationNotFound when no integration of that name was added.
    """
    path = added_path(data_dir)
    with _locked(data_dir):
        current = _read_added(path)
        found = current.get(name)
        if found is None:
            raise IntegrationNotFound(f"no added integration {name!r}")
        rest = tuple(a for a in current.integrations if a.integration.name != name)
        _write_atomic(path, AddedIntegrations(integrations=rest))
    return found


class AddedIntegrationsFile:
    """``integrations.json`` as the API sees it: re-read when it changes on disk.

    One ``stat`` per call (each rename makes a new inode, so no change goes unseen). A file
    spoilt by a hand edit keeps the last good contents, logged, so ingest keeps working.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = added_path(data_dir)
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._value = AddedIntegrations()

    def get(self) -> AddedIntegrations:
        try:
            st = self.path.stat()
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen == self._seen:
            return self._value
        with self._lock:
            if seen != self._seen:
                try:
                    self._value = _read_added(self.path)
                except IntegrationStoreError as exc:
                    log.error("keeping the integrations read before: %s", exc)
                self._seen = seen
            return self._value


_added_files: dict[Path, AddedIntegrationsFile] = {}
_added_files_lock = threading.Lock()


def added_integrations(data_dir: Path) -> AddedIntegrations:
    """The current added integrations of a data dir (cached per data dir, see above)."""
    file = _added_files.get(data_dir)
    if file is None:
        with _added_files_lock:
            file = _added_files.setdefault(data_dir, AddedIntegrationsFile(data_dir))
    return file.get()


def mask(secret: str) -> str:
    """Enough to tell keys apart, not enough to use one."""
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-2:]}"
