"""starter.secrets: generated once, 0600, stable across runs, extended for new integrations."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from domain.policy import Integration, Policy
from starter.secrets import ensure_secrets, load_secrets, mask


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
