"""starter.secrets: generated once into the database, the same for every process and host,
stable across runs, extended for new integrations; an install's secrets.json imported once;
integrations added at run time, kept with their keys in the database."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select, update

from domain.policy import Integration, Policy
from starter import secrets as secrets_module
from starter.secrets import (
    AddedIntegration,
    AddedIntegrations,
    AddedIntegrationsFile,
    IntegrationConflict,
    IntegrationNotFound,
    IntegrationStoreError,
    add_integration,
    added_integrations,
    ensure_secrets,
    feed_token,
    load_added,
    load_secrets,
    mask,
    page_token,
    remove_integration,
    rotate_calendar_secret,
    stored_api_token,
)
from storage.database import Database, sqlite_url
from storage.schema import added_integrations as added_table
from storage.schema import secrets as secrets_table

T = TypeVar("T")


def _rows(db: Database) -> dict[str, tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(select(secrets_table)).all()
    return {r.name: (r.value, r.updated_at) for r in rows}


def _hosts(data: Path, n: int = 2) -> list[Database]:
    """``n`` engines on one database, as ``n`` worker hosts on one PostgreSQL have."""
    Database.open(sqlite_url(data))  # migrated once
    return [Database(sqlite_url(data)) for _ in range(n)]


def _at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_first_run_generates_them_into_the_database(tmp_path: Path, default_policy: Policy) -> None:
    data = tmp_path / "data"
    secrets = ensure_secrets(data, default_policy)
    assert len(secrets.api_token) >= 40
    kinds = {name: s.kind for name, s in secrets.integrations.items()}
    assert kinds == {
        "pagerduty": "pagerduty",
        "alertmanager": "alertmanager",
        "grafana": "grafana",
        "generic": "generic",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", secrets.integrations["pagerduty"].key)
    assert secrets.integrations["grafana"].hmac_secret
    assert secrets.integrations["alertmanager"].hmac_secret is None
    assert secrets.calendar_secret and len(secrets.calendar_secret) >= 40
    assert load_secrets(data) == secrets
    # In the database, not in a file; the SQLite file holding them is private.
    assert not (data / "secrets.json").exists()
    stored = _rows(Database.open(sqlite_url(data)))
    assert stored["api_token"][0] == secrets.api_token
    assert (
        json.loads(stored["integration:pagerduty"][0])["key"]
        == secrets.integrations["pagerduty"].key
    )
    assert stat.S_IMODE((data / "firewatch.db").stat().st_mode) == 0o600
    assert stored_api_token(data) == secrets.api_token  # what the CLI reads


def test_later_runs_keep_keys_and_add_new_integrations(
    tmp_path: Path, default_policy: Policy
) -> None:
    first = ensure_secrets(tmp_path, default_policy)
    db = Database.open(sqlite_url(tmp_path))
    before = _rows(db)
    assert ensure_secrets(tmp_path, default_policy) == first
    assert _rows(db) == before  # nothing written
    extra = Integration(name="am-eu", kind="alertmanager", service="web")
    grown = default_policy.model_copy(
        update={"integrations": (*default_policy.integrations, extra)}
    )
    second = ensure_secrets(tmp_path, grown)
    assert second.api_token == first.api_token
    for name, secret in first.integrations.items():
        assert second.integrations[name] == secret
    assert second.integrations["am-eu"].key not in {s.key for s in first.integrations.values()}


def test_two_hosts_starting_at_once_get_the_same_secrets(
    tmp_path: Path, default_policy: Policy
) -> None:
    hosts = _hosts(tmp_path)
    calls = [partial(ensure_secrets, tmp_path, default_policy, database=db) for db in hosts * 4]
    results = _at_once(calls)
    assert all(r == results[0] for r in results)
    for db in hosts:
        assert load_secrets(tmp_path, database=db) == results[0]
    # A kind change on both hosts at once: one new key of the new shape, the same for both.
    generic = tuple(
        i.model_copy(update={"kind": "generic"}) if i.name == "pagerduty" else i
        for i in default_policy.integrations
    )
    changed = default_policy.model_copy(update={"integrations": generic})
    calls = [partial(ensure_secrets, tmp_path, changed, database=db) for db in hosts * 2]
    after = _at_once(calls)
    assert all(r == after[0] for r in after)
    key = after[0].integrations["pagerduty"]
    assert key.kind == "generic" and key.key != results[0].integrations["pagerduty"].key
    assert after[0].api_token == results[0].api_token


def test_an_installs_secrets_json_is_imported_once(
    tmp_path: Path, default_policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = {
        "api_token": "old-token-" + "x" * 40,
        "calendar_secret": "old-calendar-" + "y" * 30,
        "heartbeats": {"nightly-backup": "beat-" + "z" * 40},
        "integrations": {"pagerduty": {"kind": "pagerduty", "key": "0" * 32}},
    }
    (tmp_path / "secrets.json").write_text(json.dumps(legacy))
    host_a, host_b = _hosts(tmp_path)
    with caplog.at_level(logging.INFO):
        secrets = ensure_secrets(tmp_path, default_policy, database=host_a)
    assert secrets.api_token == legacy["api_token"]  # existing tokens keep working
    assert secrets.calendar_secret == legacy["calendar_secret"]
    assert secrets.integrations["pagerduty"].key == "0" * 32
    assert secrets.heartbeats["nightly-backup"] == "beat-" + "z" * 40
    assert set(secrets.integrations) >= {"grafana", "generic"}  # the missing ones generated
    # Imported once: the file is set aside; the database is the source of truth.
    assert not (tmp_path / "secrets.json").exists()
    assert (tmp_path / "secrets.json.imported").exists()
    assert load_secrets(tmp_path, database=host_b) == secrets
    # Another host's own, different file: the database's values stay, and the log names
    # what differed without showing any value.
    other = tmp_path / "other-host"
    other.mkdir()
    (other / "secrets.json").write_text(json.dumps({**legacy, "api_token": "other-" + "q" * 40}))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_secrets(other, database=host_b) == secrets
    assert "api_token" in caplog.text and "q" * 40 not in caplog.text
    assert legacy["api_token"] not in caplog.text


def test_rotation_is_seen_by_every_host(tmp_path: Path, default_policy: Policy) -> None:
    host_a, host_b = _hosts(tmp_path)
    before = ensure_secrets(tmp_path, default_policy, database=host_a)
    rotated = rotate_calendar_secret(tmp_path, default_policy, database=host_b)
    assert rotated.calendar_secret != before.calendar_secret
    assert rotated.model_copy(update={"calendar_secret": before.calendar_secret}) == before
    seen = load_secrets(tmp_path, database=host_a)
    assert seen == rotated
    feed = "people/dave.ics"
    assert feed_token(seen, feed) != feed_token(before, feed)


def test_env_token_overrides_the_stored_one(
    tmp_path: Path, default_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = ensure_secrets(tmp_path, default_policy).api_token
    monkeypatch.setenv("FIREWATCH_API_TOKEN", "team-token")
    assert ensure_secrets(tmp_path, default_policy).api_token == "team-token"
    assert load_secrets(tmp_path).api_token == "team-token"
    assert _rows(Database.open(sqlite_url(tmp_path)))["api_token"][0] == stored


def test_secrets_stay_out_of_reprs(tmp_path: Path, default_policy: Policy) -> None:
    secrets = ensure_secrets(tmp_path, default_policy)
    shown = f"{secrets!r} {secrets} {secrets.integrations['pagerduty']!r}"
    assert secrets.api_token not in shown
    assert all(s.key not in shown for s in secrets.integrations.values())
    key = secrets.integrations["pagerduty"].key
    assert mask(key) == f"{key[:4]}…{key[-2:]}"


def test_load_before_first_run(tmp_path: Path) -> None:
    assert stored_api_token(tmp_path) is None
    assert not (tmp_path / "firewatch.db").exists()  # the CLI's look creates no database
    with pytest.raises(FileNotFoundError, match="make up"):
        load_secrets(tmp_path)


# ---- integrations added at run time -------------------------------------------------------


def test_added_integrations_are_durable_and_keyed(tmp_path: Path) -> None:
    assert load_added(tmp_path) == AddedIntegrations()
    db = Integration(name="pagerduty-database", kind="pagerduty", service="database")
    added = add_integration(tmp_path, db, taken=["pagerduty", "grafana"])
    assert re.fullmatch(r"[0-9a-f]{32}", added.secret.key)
    assert added.integration == db and added.secret.kind == "pagerduty"
    grafana = add_integration(
        tmp_path, Integration(name="grafana-web", kind="grafana", service="web")
    )
    assert grafana.secret.hmac_secret and grafana.secret.key != added.secret.key
    # Read back through another engine (what another process or host sees).
    stored = load_added(tmp_path, database=Database(sqlite_url(tmp_path)))
    assert [a.integration.name for a in stored.integrations] == [
        "pagerduty-database",
        "grafana-web",
    ]
    assert stored.get("pagerduty-database") == added
    # Keys stay out of reprs; nothing is written to the data dir but the database.
    assert added.secret.key not in f"{added!r} {stored!r} {added}"
    assert not (tmp_path / "integrations.json").exists()


def test_add_refuses_taken_names_and_changes_nothing(tmp_path: Path) -> None:
    first = add_integration(tmp_path, Integration(name="pd-db", kind="pagerduty", service="db"))
    with pytest.raises(IntegrationConflict, match="'pd-db' exists already"):
        add_integration(tmp_path, Integration(name="pd-db", kind="generic", service="other"))
    with pytest.raises(IntegrationConflict, match="'pagerduty' is defined in the policy file"):
        add_integration(
            tmp_path,
            Integration(name="pagerduty", kind="pagerduty", service="db"),
            taken=["pagerduty"],
        )
    assert load_added(tmp_path).integrations == (first,)


def test_two_hosts_adding_one_name_at_once_one_wins(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    outcomes: list[str] = []

    def add(db: Database, service: str) -> None:
        try:
            add_integration(
                tmp_path, Integration(name="same", kind="generic", service=service), database=db
            )
            outcomes.append("added")
        except IntegrationConflict:
            outcomes.append("conflict")

    calls: list[Callable[[], None]] = [partial(add, db, f"s{i}") for i, db in enumerate(hosts * 3)]
    _at_once(calls)
    assert sorted(outcomes) == ["added"] + ["conflict"] * 5
    assert [a.integration.name for a in load_added(tmp_path).integrations] == ["same"]


def test_remove_deletes_the_integration_and_its_key(tmp_path: Path) -> None:
    keep = add_integration(tmp_path, Integration(name="a", kind="generic", service="x"))
    gone = add_integration(tmp_path, Integration(name="b", kind="generic", service="y"))
    assert remove_integration(tmp_path, "b") == gone
    with Database.open(sqlite_url(tmp_path)).read() as conn:
        secrets = conn.scalars(select(added_table.c.secret)).all()
    assert not any(gone.secret.key in s for s in secrets)
    assert any(keep.secret.key in s for s in secrets)
    assert load_added(tmp_path).integrations == (keep,)
    with pytest.raises(IntegrationNotFound, match="no added integration 'b'"):
        remove_integration(tmp_path, "b")


def test_the_api_view_keeps_the_last_list_through_a_database_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_host, cli_host = _hosts(tmp_path)
    view = AddedIntegrationsFile(tmp_path, api_host)
    integration = Integration(name="one", kind="generic", service="x")
    one = add_integration(tmp_path, integration, database=cli_host)
    assert view.get().integrations == (one,)
    view.database = Database("postgresql://firewatch@127.0.0.1:1/firewatch")  # nobody there
    assert view.get().integrations == (one,)  # the last list read, not an error
    assert view.get().integrations == (one,)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "database unreachable" in errors[0]  # once, not per request
    two = add_integration(
        tmp_path, Integration(name="two", kind="generic", service="x"), database=cli_host
    )
    view.database = api_host  # back
    assert view.get().integrations == (one,)  # left alone for RETRY_AFTER_OUTAGE_S
    monkeypatch.setattr(time, "monotonic", lambda: float("inf"))
    assert view.get().integrations == (one, two)
    monkeypatch.undo()
    # The API's own view (``added_integrations``), through an outage: a change written by
    # this process ends the wait at once, so a key just added works at once.
    assert added_integrations(tmp_path).integrations == (one, two)
    [api_view] = [v for (d, _), v in secrets_module._added_files.items() if d == tmp_path]
    reachable = api_view.database
    api_view.database = Database("postgresql://firewatch@127.0.0.1:1/firewatch")
    assert api_view.get().integrations == (one, two)
    api_view.database = reachable
    three = add_integration(
        tmp_path, Integration(name="three", kind="generic", service="x"), database=cli_host
    )
    assert added_integrations(tmp_path).integrations == (one, two, three)


def test_the_api_view_follows_changes_made_elsewhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api_host, cli_host = _hosts(tmp_path)
    view = AddedIntegrationsFile(tmp_path, api_host)
    assert view.get().integrations == ()

    def add(name: str) -> AddedIntegration:
        integration = Integration(name=name, kind="generic", service="x")
        return add_integration(tmp_path, integration, database=cli_host)

    one = add("one")
    assert view.get().integrations == (one,)  # seen at once, no restart
    two = add("two")
    assert view.get().integrations == (one, two)
    remove_integration(tmp_path, "one", database=cli_host)
    assert view.get().integrations == (two,)
    # A row spoilt by a hand edit: the last good list stays (logged), so ingest goes on.
    with cli_host.write() as conn:
        conn.execute(
            update(added_table).where(added_table.c.name == "two").values(integration="{}")
        )
    three = add("three")  # bumps the counter: the view reads again, and keeps what it had
    with caplog.at_level(logging.ERROR):
        assert view.get().integrations == (two,)
    assert "added integration 'two' is invalid" in caplog.text
    for refused in (
        lambda: load_added(tmp_path, database=cli_host),
        lambda: remove_integration(tmp_path, "two", database=cli_host),
    ):
        with pytest.raises(IntegrationStoreError, match="'two' is invalid"):
            refused()
    # Mended by hand: a hand edit is seen at the next change (or restart), as it bumps no
    # counter.
    with cli_host.write() as conn:
        conn.execute(
            update(added_table)
            .where(added_table.c.name == "two")
            .values(integration=two.integration.model_dump_json())
        )
    four = add("four")
    assert view.get().integrations == (two, three, four)


def test_an_installs_integrations_json_is_imported_once(tmp_path: Path) -> None:
    before = add_integration(tmp_path / "old", Integration(name="x", kind="generic", service="a"))
    legacy = AddedIntegrations(integrations=(before,))
    (tmp_path / "integrations.json").write_text(legacy.model_dump_json())
    host_a, host_b = _hosts(tmp_path)
    view = AddedIntegrationsFile(tmp_path, host_b)
    assert view.get() == legacy  # its key keeps working
    assert not (tmp_path / "integrations.json").exists()
    assert (tmp_path / "integrations.json.imported").exists()
    added = add_integration(
        tmp_path, Integration(name="y", kind="generic", service="b"), database=host_a
    )
    assert load_added(tmp_path, database=host_a).integrations == (before, added)
    assert view.get().integrations == (before, added)


def test_an_unreadable_integrations_json_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "integrations.json").write_text('{"integrations": [{"integration": 3}]}')
    with pytest.raises(IntegrationStoreError, match=r"integrations\.json is invalid"):
        add_integration(tmp_path, Integration(name="three", kind="generic", service="z"))
    assert (tmp_path / "integrations.json").exists()  # left for a fix, then imported
    (tmp_path / "integrations.json").write_text('{"integrations": []}')
    three = add_integration(tmp_path, Integration(name="three", kind="generic", service="z"))
    assert load_added(tmp_path).integrations == (three,)


_PROCESS = """
import hashlib, sys, time
from pathlib import Path
from starter.secrets import ensure_secrets
data, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
value = ensure_secrets(data)  # the policy FIREWATCH_POLICY names: the shipped one here
print(hashlib.sha256(value.model_dump_json().encode()).hexdigest())
"""


def test_processes_starting_at_once_agree(tmp_path: Path) -> None:
    """Separate processes, each with its own engine, on a database none has opened yet."""
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, str(tmp_path / "data"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(3)
    ]
    time.sleep(1.5)  # let them import and wait at the line
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    digests = {out.strip() for out, _ in outputs}
    assert len(digests) == 1
    mine = load_secrets(tmp_path / "data", database=Database.open(sqlite_url(tmp_path / "data")))
    assert digests == {hashlib.sha256(mine.model_dump_json().encode()).hexdigest()}


def test_a_page_token_opens_one_page_and_is_no_feed_token(
    tmp_path: Path, default_policy: Policy
) -> None:
    secrets = ensure_secrets(tmp_path, default_policy)
    page = page_token(secrets, "/reports/monthly/2026-11.html")
    assert page == page_token(secrets, "reports/monthly/2026-11.html")  # the slash aside
    assert page != page_token(secrets, "/reports/monthly/2026-10.html")
    assert page != feed_token(secrets, "reports/monthly/2026-11.html")
    with pytest.raises(ValueError, match="no link secret"):
        page_token(secrets.model_copy(update={"calendar_secret": None}), "/x.html")
