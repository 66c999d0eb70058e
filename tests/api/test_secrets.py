"""starter.secrets: generated once, 0600, stable across runs, extended for new integrations;
integrations added at run time, kept with their keys in integrations.json."""

from __future__ import annotations

import json
import logging
import re
import stat
from pathlib import Path

import pytest

from domain.policy import Integration, Policy
from starter.secrets import (
    AddedIntegrations,
    AddedIntegrationsFile,
    IntegrationConflict,
    IntegrationNotFound,
    IntegrationStoreError,
    add_integration,
    ensure_secrets,
    load_added,
    load_secrets,
    mask,
    remove_integration,
)


def test_first_run_creates_a_private_file(tmp_path: Path, default_policy: Policy) -> None:
    secrets = ensure_secrets(tmp_path / "data", default_policy)
    path = tmp_path / "data" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
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
    assert load_secrets(tmp_path / "data") == secrets
    # No temp files left behind by the atomic write.
    assert sorted(p.name for p in path.parent.iterdir()) == [".secrets.lock", "secrets.json"]


def test_later_runs_keep_keys_and_add_new_integrations(
    tmp_path: Path, default_policy: Policy
) -> None:
    first = ensure_secrets(tmp_path, default_policy)
    mtime = (tmp_path / "secrets.json").stat().st_mtime_ns
    assert ensure_secrets(tmp_path, default_policy) == first
    assert (tmp_path / "secrets.json").stat().st_mtime_ns == mtime  # nothing to write
    extra = Integration(name="am-eu", kind="alertmanager", service="web")
    grown = default_policy.model_copy(
        update={"integrations": (*default_policy.integrations, extra)}
    )
    second = ensure_secrets(tmp_path, grown)
    assert second.api_token == first.api_token
    for name, secret in first.integrations.items():
        assert second.integrations[name] == secret
    assert second.integrations["am-eu"].key not in {s.key for s in first.integrations.values()}


def test_env_token_overrides_the_stored_one(
    tmp_path: Path, default_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = ensure_secrets(tmp_path, default_policy).api_token
    monkeypatch.setenv("FIREWATCH_API_TOKEN", "team-token")
    assert ensure_secrets(tmp_path, default_policy).api_token == "team-token"
    assert load_secrets(tmp_path).api_token == "team-token"
    assert json.loads((tmp_path / "secrets.json").read_text())["api_token"] == stored


def test_secrets_stay_out_of_reprs(tmp_path: Path, default_policy: Policy) -> None:
    secrets = ensure_secrets(tmp_path, default_policy)
    shown = f"{secrets!r} {secrets} {secrets.integrations['pagerduty']!r}"
    assert secrets.api_token not in shown
    assert all(s.key not in shown for s in secrets.integrations.values())
    key = secrets.integrations["pagerduty"].key
    assert mask(key) == f"{key[:4]}…{key[-2:]}"


def test_load_before_first_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make up"):
        load_secrets(tmp_path)


# ---- integrations added at run time -------------------------------------------------------


def test_added_integrations_are_private_durable_and_keyed(tmp_path: Path) -> None:
    assert load_added(tmp_path) == AddedIntegrations()
    db = Integration(name="pagerduty-database", kind="pagerduty", service="database")
    added = add_integration(tmp_path, db, taken=["pagerduty", "grafana"])
    path = tmp_path / "integrations.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{32}", added.secret.key)
    assert added.integration == db and added.secret.kind == "pagerduty"
    grafana = add_integration(
        tmp_path, Integration(name="grafana-web", kind="grafana", service="web")
    )
    assert grafana.secret.hmac_secret and grafana.secret.key != added.secret.key
    # Read back from disk (what another process, or the next start, sees).
    stored = load_added(tmp_path)
    assert [a.integration.name for a in stored.integrations] == [
        "pagerduty-database",
        "grafana-web",
    ]
    assert stored.get("pagerduty-database") == added
    # Keys stay out of reprs.
    assert added.secret.key not in f"{added!r} {stored!r} {added}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".secrets.lock", "integrations.json"]


def test_add_refuses_taken_names_and_changes_nothing(tmp_path: Path) -> None:
    first = add_integration(tmp_path, Integration(name="pd-db", kind="pagerduty", service="db"))
    before = (tmp_path / "integrations.json").read_bytes()
    with pytest.raises(IntegrationConflict, match="'pd-db' exists already"):
        add_integration(tmp_path, Integration(name="pd-db", kind="generic", service="other"))
    with pytest.raises(IntegrationConflict, match="'pagerduty' is defined in the policy file"):
        add_integration(
            tmp_path,
            Integration(name="pagerduty", kind="pagerduty", service="db"),
            taken=["pagerduty"],
        )
    assert (tmp_path / "integrations.json").read_bytes() == before
    assert load_added(tmp_path).integrations == (first,)


def test_remove_deletes_the_integration_and_its_key(tmp_path: Path) -> None:
    keep = add_integration(tmp_path, Integration(name="a", kind="generic", service="x"))
    gone = add_integration(tmp_path, Integration(name="b", kind="generic", service="y"))
    assert remove_integration(tmp_path, "b") == gone
    text = (tmp_path / "integrations.json").read_text()
    assert gone.secret.key not in text and keep.secret.key in text
    assert load_added(tmp_path).integrations == (keep,)
    with pytest.raises(IntegrationNotFound, match="no added integration 'b'"):
        remove_integration(tmp_path, "b")


def test_the_api_view_follows_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    view = AddedIntegrationsFile(tmp_path)
    assert view.get().integrations == ()
    one = add_integration(tmp_path, Integration(name="one", kind="generic", service="x"))
    assert view.get().integrations == (one,)  # seen at once, no restart
    two = add_integration(tmp_path, Integration(name="two", kind="generic", service="y"))
    assert view.get().integrations == (one, two)
    remove_integration(tmp_path, "one")
    assert view.get().integrations == (two,)
    # A spoilt hand edit: the last good contents stay (logged); the writers refuse.
    (tmp_path / "integrations.json").write_text('{"integrations": [{"integration": 3}]}')
    with caplog.at_level(logging.ERROR):
        assert view.get().integrations == (two,)
    assert "integrations.json is invalid" in caplog.text
    with pytest.raises(IntegrationStoreError, match=r"integrations\.json is invalid"):
        add_integration(tmp_path, Integration(name="three", kind="generic", service="z"))
    (tmp_path / "integrations.json").unlink()
    assert view.get().integrations == ()
