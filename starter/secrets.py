"""Secrets of a Firewatch installation: the API token and one key per integration.

They live in the database (table ``secrets``, one row each), generated on the first
``make up`` and never written to the repository, logs or workflow payloads. Whichever
process comes first generates a missing one: each is inserted only if absent and then
read back, so every process and every host on the same database gets the same value
without a lock. Integrations added to the policy later get keys on the next start;
existing keys never change, so monitoring tools keep working across restarts.

Integrations added at run time (``firewatch integrations add``, ``POST /integrations``)
live in the table ``added_integrations``, each with its own key: one key per service, as
in PagerDuty, without editing the policy file. Every change bumps a counter
(``state_versions``); an API process reads that one row per request and re-reads the list
when it moved, so every API process, on any host, sees an addition or removal at once.

Installs from before the database kept them: ``<data dir>/secrets.json`` and
``integrations.json`` are imported once, at the first use, and renamed ``*.imported``;
from then on the database is the source of truth. (Another host's different file cannot
override what was imported first: its values are ignored, with a warning.)

``FIREWATCH_API_TOKEN`` overrides the stored API token (e.g. one shared by a team).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from activities.settings import get_settings
from domain.policy import Integration, IntegrationKind, Policy
from storage import dialects
from storage.database import Database, database_url, timestamp
from storage.schema import added_integrations as added_table
from storage.schema import secrets as secrets_table
from storage.schema import state_versions

SECRETS_FILE = "secrets.json"
ADDED_FILE = "integrations.json"
IMPORTED_SUFFIX = ".imported"

API_TOKEN = "api_token"
CALENDAR_SECRET = "calendar_secret"
INTEGRATION = "integration:"
HEARTBEAT = "heartbeat:"
ADDED_VERSION = "added_integrations"  # the state_versions row bumped by every change
ADDED_LOCK = "firewatch:added-integrations"

_s = secrets_table.c
_a = added_table.c
_v = state_versions.c

log = logging.getLogger(__name__)

# After the database failed a read of the added integrations, how long ingest uses the
# last list read without trying again.
RETRY_AFTER_OUTAGE_S = 1.0


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
    """The file secrets were kept in before the database (imported once, see above)."""
    return data_dir / SECRETS_FILE


def _database(data_dir: Path, database: Database | None) -> Database:
    return database if database is not None else Database.open(database_url(data_dir))


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


def _private(db: Database) -> None:
    """The embedded SQLite file holds the secrets now: owner-only, as secrets.json was.
    (SQLite gives its -wal and -shm files the database file's mode.)"""
    path = db.sqlite_path
    if path is None:
        return
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if part.stat().st_mode & 0o077:
                part.chmod(0o600)


def _rows(db: Database) -> dict[str, str]:
    with db.read() as conn:
        return {name: value for name, value in conn.execute(select(_s.name, _s.value)).all()}


def _as_rows(value: Secrets) -> dict[str, str]:
    rows = {API_TOKEN: value.api_token}
    if value.calendar_secret is not None:
        rows[CALENDAR_SECRET] = value.calendar_secret
    for name, secret in value.integrations.items():
        rows[INTEGRATION + name] = secret.model_dump_json()
    for name, token in value.heartbeats.items():
        rows[HEARTBEAT + name] = token
    return rows


def _from_rows(rows: Mapping[str, str]) -> Secrets:
    return Secrets(
        api_token=rows[API_TOKEN],
        calendar_secret=rows.get(CALENDAR_SECRET),
        integrations={
            name.removeprefix(INTEGRATION): IntegrationSecret.model_validate_json(value)
            for name, value in rows.items()
            if name.startswith(INTEGRATION)
        },
        heartbeats={
            name.removeprefix(HEARTBEAT): value
            for name, value in rows.items()
            if name.startswith(HEARTBEAT)
        },
    )


def _insert_missing(db: Database, rows: Mapping[str, str]) -> None:
    """Insert each row unless its name exists: the first writer's value stays, for all."""
    now = timestamp(datetime.now(UTC))
    with db.write() as conn:
        # In name order: two hosts inserting the same rows wait on each other's row locks
        # (PostgreSQL) in the same order, never in a cycle.
        for name, value in sorted(rows.items()):
            conn.execute(
                dialects.insert_ignoring_conflict(
                    conn, secrets_table, {"name": name, "value": value, "updated_at": now}, ["name"]
                )
            )


def _retire(path: Path) -> None:
    """The legacy file is in the database now: keep it aside, read no more."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, path.with_name(path.name + IMPORTED_SUFFIX))


def _import_legacy_secrets(data_dir: Path, db: Database) -> None:
    """Once: an install's ``secrets.json`` into the database (its tokens keep working)."""
    path = secrets_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    legacy = _as_rows(Secrets.model_validate_json(text))
    _insert_missing(db, legacy)
    stored = _rows(db)
    differing = sorted(name for name, value in legacy.items() if stored.get(name) != value)
    if differing:  # names only: never a value
        log.warning(
            "%s: kept the database's values of %s (set first, e.g. by another host)",
            path,
            ", ".join(differing),
        )
    _retire(path)
    log.info("imported %s into the database", path)


def _stored(data_dir: Path, db: Database) -> dict[str, str]:
    if secrets_path(data_dir).exists():  # set aside once imported: one stat from then on
        _import_legacy_secrets(data_dir, db)
    return _rows(db)


def ensure_secrets(
    data_dir: Path, policy: Policy | None = None, *, database: Database | None = None
) -> Secrets:
    """Create missing secrets (never replacing existing ones) and return them all.

    ``policy`` defaults to the one the environment configures (``FIREWATCH_POLICY``);
    ``database`` to the data dir's (``FIREWATCH_DATABASE_URL``).
    """
    db = _database(data_dir, database)
    wanted = _integrations(policy)
    monitors = _heartbeat_names(policy)
    rows = _stored(data_dir, db)
    missing: dict[str, str] = {}
    replace: dict[str, tuple[str, str]] = {}  # name -> (the value read, its replacement)
    if API_TOKEN not in rows:
        missing[API_TOKEN] = secrets.token_urlsafe(32)
    if CALENDAR_SECRET not in rows:
        missing[CALENDAR_SECRET] = secrets.token_urlsafe(32)
    for integration in wanted:
        name = INTEGRATION + integration.name
        if name not in rows:
            missing[name] = new_integration_secret(integration.kind).model_dump_json()
            continue
        have = IntegrationSecret.model_validate_json(rows[name])
        if have.kind != integration.kind:
            # A kind change needs a key of the other shape (PagerDuty: 32 hex digits).
            new = new_integration_secret(integration.kind)
            replace[name] = (rows[name], new.model_dump_json())
        elif integration.kind == "grafana" and have.hmac_secret is None:
            new = have.model_copy(update={"hmac_secret": secrets.token_urlsafe(32)})
            replace[name] = (rows[name], new.model_dump_json())
    for monitor in monitors:
        if HEARTBEAT + monitor not in rows:  # one token per monitor, kept for good
            missing[HEARTBEAT + monitor] = secrets.token_urlsafe(32)
    _private(db)
    if missing or replace:
        _insert_missing(db, missing)
        if replace:
            now = timestamp(datetime.now(UTC))
            with db.write() as conn:
                for name, (old, new_value) in sorted(replace.items()):
                    # Only over the value read: a process that replaced it first wins.
                    conn.execute(
                        update(secrets_table)
                        .where(_s.name == name, _s.value == old)
                        .values(value=new_value, updated_at=now)
                    )
        rows = _rows(db)  # read back: what every other process sees too
    return _with_env(_from_rows(rows))


def rotate_calendar_secret(
    data_dir: Path, policy: Policy | None = None, *, database: Database | None = None
) -> Secrets:
    """A new calendar secret: every feed URL handed out so far stops working."""
    db = _database(data_dir, database)
    ensure_secrets(data_dir, policy, database=db)
    now = timestamp(datetime.now(UTC))
    with db.write() as conn:  # one transaction: the new secret, and the secrets read with it
        conn.execute(
            update(secrets_table)
            .where(_s.name == CALENDAR_SECRET)
            .values(value=secrets.token_urlsafe(32), updated_at=now)
        )
        rows = {name: value for name, value in conn.execute(select(_s.name, _s.value)).all()}
    return _with_env(_from_rows(rows))


def feed_token(value: Secrets, feed: str) -> str:
    """The URL token of one calendar feed (``primary.ics``, ``people/dave.ics``): each feed
    has its own, so sharing one person's feed URL opens no other."""
    key = (value.calendar_secret or "").encode()
    return hmac.new(key, feed.encode(), hashlib.sha256).hexdigest()[:32]


def page_token(value: Secrets, path: str) -> str:
    """The URL token of one page people open from a link, where a browser sends no API
    token (``/reports/monthly/2026-11.html``): it opens that page alone. Keyed like the
    calendar feeds' (rotating those rotates these), under a prefix of its own so that no
    page token is a feed token. No secret, no token: never a key anyone can compute."""
    if not value.calendar_secret:
        raise ValueError("no link secret yet: start Firewatch once (make up)")
    return feed_token(value, "page:" + path.lstrip("/"))


def load_secrets(data_dir: Path, *, database: Database | None = None) -> Secrets:
    """The stored secrets (with the env override); FileNotFoundError before the first run."""
    rows = _stored(data_dir, _database(data_dir, database))
    if API_TOKEN not in rows:
        raise FileNotFoundError("no secrets in the database yet: run `make up` once")
    return _with_env(_from_rows(rows))


def database_exists(url: str) -> bool:
    """False for an embedded SQLite file not created yet (looking creates nothing)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(str(parsed.database)).exists()


def stored_api_token(data_dir: Path) -> str | None:
    """The database's API token, for the CLI: None while there is none, or no database yet
    (the embedded SQLite file not created; the CLI never creates it)."""
    url = database_url(data_dir)
    if not database_exists(url):
        return None
    db = Database(url)
    try:
        with db.read() as conn:
            if not db.engine.dialect.has_table(conn, secrets_table.name):
                return None  # not migrated yet; `make up` will
            token = conn.scalar(select(_s.value).where(_s.name == API_TOKEN))
        return str(token) if token is not None else None
    finally:
        db.close()


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
    """The added integrations cannot be read (a bad hand edit): nothing is changed."""


def added_path(data_dir: Path) -> Path:
    """The file added integrations were kept in before the database (imported once)."""
    return data_dir / ADDED_FILE


def _invalid(where: str, exc: ValidationError) -> IntegrationStoreError:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"]) or "value"
    return IntegrationStoreError(f"{where} is invalid: {loc}: {first['msg']}")


def _read_legacy_added(path: Path) -> AddedIntegrations | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrationStoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return AddedIntegrations.model_validate_json(text)
    except ValidationError as exc:
        raise _invalid(str(path), exc) from None


def _added_version(conn: Connection) -> int | None:
    found = conn.scalar(select(_v.version).where(_v.name == ADDED_VERSION))
    return None if found is None else int(found)


def _bump(conn: Connection) -> None:
    conn.execute(
        dialects.upsert(
            conn,
            state_versions,
            {"name": ADDED_VERSION, "version": 1},
            ["name"],
            {"version": _v.version + 1},
        )
    )


def _ensure_added_imported(data_dir: Path, db: Database) -> None:
    """Once per database: the legacy ``integrations.json`` in, and the counter row made.

    A legacy file that cannot be read stops here, with nothing changed (as before)."""
    with db.read() as conn:
        if _added_version(conn) is not None:
            return
    path = added_path(data_dir)
    legacy = _read_legacy_added(path)
    with db.write(lock=ADDED_LOCK) as conn:
        if _added_version(conn) is not None:  # another process imported first
            return
        for added in legacy.integrations if legacy else ():
            conn.execute(
                dialects.insert_ignoring_conflict(conn, added_table, _added_row(added), ["name"])
            )
        _bump(conn)
    if legacy is not None:
        _retire(path)
        log.info("imported %s into the database", path)


def _added_row(added: AddedIntegration) -> dict[str, str]:
    return {
        "name": added.integration.name,
        "integration": added.integration.model_dump_json(),
        "secret": added.secret.model_dump_json(),
        "added_at": timestamp(added.added_at),
    }


def _parse_added(name: str, integration: str, secret: str, added_at: str) -> AddedIntegration:
    try:
        return AddedIntegration(
            integration=Integration.model_validate_json(integration),
            secret=IntegrationSecret.model_validate_json(secret),
            added_at=datetime.fromisoformat(added_at),
        )
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise _invalid(f"added integration {name!r}", exc) from None
        raise IntegrationStoreError(f"added integration {name!r} is invalid: {exc}") from None


def _read_added(conn: Connection) -> tuple[int | None, AddedIntegrations]:
    """The counter and the list, read in one transaction (so they belong together)."""
    version = _added_version(conn)
    rows = conn.execute(
        select(_a.name, _a.integration, _a.secret, _a.added_at).order_by(_a.added_at, _a.name)
    ).all()
    return version, AddedIntegrations(integrations=tuple(_parse_added(*row) for row in rows))


def load_added(data_dir: Path, *, database: Database | None = None) -> AddedIntegrations:
    """The integrations added at run time (none before the first ``add``)."""
    db = _database(data_dir, database)
    _ensure_added_imported(data_dir, db)
    with db.read() as conn, conn.begin():
        return _read_added(conn)[1]


def add_integration(
    data_dir: Path,
    integration: Integration,
    taken: Iterable[str] = (),
    *,
    database: Database | None = None,
) -> AddedIntegration:
    """Store a new integration with a fresh key. ``taken``: the policy file's names.

    Raises IntegrationConflict when the name is in use; nothing is written then.
    """
    db = _database(data_dir, database)
    _ensure_added_imported(data_dir, db)
    name = integration.name
    if name in set(taken):
        raise IntegrationConflict(
            f"integration {name!r} is defined in the policy file; pick another name"
        )
    added = AddedIntegration(
        integration=integration,
        secret=new_integration_secret(integration.kind),
        added_at=datetime.now(UTC),
    )
    with db.write(lock=ADDED_LOCK) as conn:
        inserted = conn.execute(
            dialects.insert_ignoring_conflict(conn, added_table, _added_row(added), ["name"])
        ).rowcount
        if inserted != 1:
            raise IntegrationConflict(f"integration {name!r} exists already; pick another name")
        _bump(conn)
    _database_answered(data_dir)
    return added


def remove_integration(
    data_dir: Path, name: str, *, database: Database | None = None
) -> AddedIntegration:
    """Delete an added integration and its key: senders using the key are refused from now.

    Raises IntegrationNotFound when no integration of that name was added.
    """
    db = _database(data_dir, database)
    _ensure_added_imported(data_dir, db)
    with db.write(lock=ADDED_LOCK) as conn:
        row = conn.execute(
            select(_a.name, _a.integration, _a.secret, _a.added_at).where(_a.name == name)
        ).first()
        if row is None:
            raise IntegrationNotFound(f"no added integration {name!r}")
        found = _parse_added(*row)
        conn.execute(delete(added_table).where(_a.name == name))
        _bump(conn)
    _database_answered(data_dir)
    return found


class AddedIntegrationsFile:
    """The added integrations as the API sees them: re-read when they change.

    (The name is from when they lived in a file.) One read of the ``state_versions``
    counter per call, which every add and remove bumps in the same transaction, so no
    change by any process on any host goes unseen; the list is read again only when it
    moved. Rows that cannot be read keep the last good list, logged, so ingest keeps working;
    so does a database that cannot be reached (see ``get``).
    """

    def __init__(self, data_dir: Path, database: Database | None = None) -> None:
        self.data_dir = data_dir
        self.database = _database(data_dir, database)
        self._lock = threading.Lock()
        self._imported = False
        self._seen: int | None = None
        self._value = AddedIntegrations()
        self._unreachable = False
        self._unreachable_until = 0.0

    def get(self) -> AddedIntegrations:
        """The newest list; the last good one while the database cannot be reached.

        Alerts reach Temporal, not this database: an outage of it must not turn away alerts
        from the policy file's integrations (added ones keep working as last read). After a
        failure the database is left alone for ``RETRY_AFTER_OUTAGE_S``, so requests do not
        each wait on a connection attempt."""
        if time.monotonic() < self._unreachable_until:
            return self._value
        try:
            return self._read()
        except SQLAlchemyError as exc:
            self._unreachable_until = time.monotonic() + RETRY_AFTER_OUTAGE_S
            if not self._unreachable:
                log.error("database unreachable; added integrations as last read: %s", exc)
            self._unreachable = True
            return self._value

    def retry_now(self) -> None:
        self._unreachable_until = 0.0

    def _read(self) -> AddedIntegrations:
        if not self._imported:
            try:
                _ensure_added_imported(self.data_dir, self.database)
                self._imported = True
            except IntegrationStoreError as exc:
                log.error("cannot import the added integrations: %s", exc)
                return self._value
        with self.database.read() as conn:
            seen = _added_version(conn)
        if self._unreachable:
            log.info("database reachable again; added integrations current")
            self._unreachable = False
        if seen == self._seen:
            return self._value
        with self._lock:
            if seen != self._seen:
                try:
                    with self.database.read() as conn, conn.begin():
                        seen, self._value = _read_added(conn)
                    self._seen = seen
                except IntegrationStoreError as exc:
                    # Not marked seen: the next request reads again (a removal still applies).
                    log.error("keeping the integrations read before: %s", exc)
            return self._value


_added_files: dict[tuple[Path, str], AddedIntegrationsFile] = {}
_added_files_lock = threading.Lock()


def _database_answered(data_dir: Path) -> None:
    """A change was just written: this process's views read again at their next call, even
    if an outage had them waiting (the key just added works at once)."""
    for (view_dir, _), view in list(_added_files.items()):
        if view_dir == data_dir:
            view.retry_now()


def added_integrations(data_dir: Path) -> AddedIntegrations:
    """The current added integrations of a data dir (cached per data dir and database)."""
    key = (data_dir, database_url(data_dir))
    file = _added_files.get(key)
    if file is None:
        with _added_files_lock:
            file = _added_files.get(key)
            if file is None:
                file = _added_files.setdefault(key, AddedIntegrationsFile(data_dir))
    return file.get()


def mask(secret: str) -> str:
    """Enough to tell keys apart, not enough to use one."""
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-2:]}"
