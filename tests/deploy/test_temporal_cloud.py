"""Temporal Cloud through the SDK's environment configuration (``temporal.toml`` profiles):
what a profile turns into for ``Client.connect``, the errors a broken one gives, and that
the API key never reaches a log line or an error message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from starter.connection import (
    TemporalConfigError,
    connect,
    connect_kwargs,
    describe_connection,
    external_temporal_configured,
)

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "fw-test-key-3f9c2a17-DO-NOT-LOG"
CLOUD = "firewatch-prod.a1b2c.tmprl.cloud"


def base_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cloud_profile(tmp_path: Path, *, tls: str = "") -> Path:
    return write(
        tmp_path / "temporal.toml",
        f"""
[profile.default]
address = "127.0.0.1:7233"

[profile.cloud]
address = "{CLOUD}:7233"
namespace = "firewatch-prod.a1b2c"
api_key = "{API_KEY}"
{tls}
""",
    )


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real self-signed certificate and key (openssl), as Temporal Cloud's mTLS uses."""
    where = tmp_path_factory.mktemp("mtls")
    cert, key = where / "client.pem", where / "client.key"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*request, "-subj", "/CN=firewatch-worker", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_api_key_profile_gives_tls_key_and_namespace(tmp_path: Path) -> None:
    toml = cloud_profile(tmp_path)
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "cloud"}
    assert external_temporal_configured(env)
    kwargs = connect_kwargs(environ=env)
    assert kwargs["target_host"] == f"{CLOUD}:7233"
    assert kwargs["namespace"] == "firewatch-prod.a1b2c"
    assert kwargs["api_key"] == API_KEY
    assert kwargs["tls"] is True  # an API key switches TLS on with the system's roots
    line = describe_connection(kwargs)
    assert line == f"{CLOUD}:7233, namespace firewatch-prod.a1b2c, TLS, API key set"
    assert API_KEY not in line


def test_api_key_profile_with_tls_section(tmp_path: Path) -> None:
    toml = cloud_profile(tmp_path, tls=f'[profile.cloud.tls]\nserver_name = "{CLOUD}"\n')
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "cloud"}
    kwargs = connect_kwargs(environ=env)
    assert isinstance(kwargs["tls"], TLSConfig)
    assert kwargs["tls"].domain == CLOUD
    assert kwargs["api_key"] == API_KEY
    # TEMPORAL_NAMESPACE still wins over the profile, as the resolution order says.
    kwargs = connect_kwargs(environ={**env, "TEMPORAL_NAMESPACE": "other.a1b2c"})
    assert (kwargs["namespace"], kwargs["api_key"]) == ("other.a1b2c", API_KEY)


def test_api_key_from_the_environment_alone(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        "TEMPORAL_ADDRESS": f"{CLOUD}:7233",
        "TEMPORAL_NAMESPACE": "firewatch-prod.a1b2c",
        "TEMPORAL_API_KEY": API_KEY,
    }
    kwargs = connect_kwargs(environ=env)
    assert (kwargs["api_key"], kwargs["tls"]) == (API_KEY, True)


def test_mtls_profile_loads_certificate_and_key(
    tmp_path: Path, client_cert: tuple[Path, Path]
) -> None:
    cert, key = client_cert
    toml = write(
        tmp_path / "mtls.toml",
        f"""
[profile.mtls]
address = "{CLOUD}:7233"
namespace = "firewatch-prod.a1b2c"
[profile.mtls.tls]
client_cert_path = "{cert}"
client_key_path = "{key}"
""",
    )
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "mtls"}
    kwargs = connect_kwargs(environ=env)
    tls = kwargs["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == cert.read_bytes()
    assert tls.client_private_key == key.read_bytes()
    assert tls.client_cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert "api_key" not in kwargs
    line = describe_connection(kwargs)
    assert line == f"{CLOUD}:7233, namespace firewatch-prod.a1b2c, mTLS"
    assert "PRIVATE KEY" not in line


def test_mtls_profile_with_a_missing_key_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "secrets" / "client.key"
    toml = write(
        tmp_path / "mtls.toml",
        f'[profile.mtls]\naddress = "{CLOUD}:7233"\n[profile.mtls.tls]\n'
        f'client_cert_path = "{missing}"\nclient_key_path = "{missing}"\n',
    )
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "mtls"}
    with pytest.raises(TemporalConfigError) as err:
        connect_kwargs(environ=env)
    assert str(missing) in str(err.value)
    assert f"profile 'mtls' of {toml}" in str(err.value)


def test_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "temporal.toml"
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(missing)}
    with pytest.raises(TemporalConfigError, match=f"TEMPORAL_CONFIG_FILE={missing}: no such file"):
        connect_kwargs(environ=env)
    for extra in ({"TEMPORAL_PROFILE": "cloud"}, {"TEMPORAL_ADDRESS": f"{CLOUD}:7233"}):
        with pytest.raises(TemporalConfigError, match=str(missing)):
            connect_kwargs(environ={**env, **extra})
    # `make up` passes its embedded server's address and keeps ignoring it.
    assert connect_kwargs(address="127.0.0.1:7233", environ=env)["target_host"] == "127.0.0.1:7233"


def test_missing_profile_is_an_error_naming_profile_and_file(tmp_path: Path) -> None:
    toml = cloud_profile(tmp_path)
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "prod"}
    with pytest.raises(TemporalConfigError) as err:
        connect_kwargs(environ=env)
    assert "'prod'" in str(err.value) and str(toml) in str(err.value)
    assert API_KEY not in str(err.value)


def test_profile_without_any_file_is_an_error_naming_where_it_looked(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "TEMPORAL_PROFILE": "cloud"}
    expected = tmp_path / "xdg" / "temporalio" / "temporal.toml"
    with pytest.raises(TemporalConfigError, match=f"no Temporal config file at {expected}"):
        connect_kwargs(environ=env)


def test_a_toml_error_never_quotes_the_api_key(tmp_path: Path) -> None:
    toml = write(tmp_path / "bad.toml", f'[profile.cloud]\napi_key = "{API_KEY}\n')
    env = {**base_env(tmp_path), "TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "cloud"}
    with pytest.raises(TemporalConfigError) as err:
        connect_kwargs(environ=env)
    message = str(err.value)
    assert API_KEY not in message
    assert str(toml) in message and "line 2" in message


async def test_connect_uses_the_profile(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile (address, namespace, API key, TLS off for the plaintext dev server) is what
    ``connect()`` dials: the dev server answers as the profile's namespace."""
    target = dev_env.client.service_client.config.target_host
    toml = write(
        tmp_path / "temporal.toml",
        f'[profile.local]\naddress = "{target}"\nnamespace = "default"\n'
        f'api_key = "{API_KEY}"\n[profile.local.tls]\ndisabled = true\n',
    )
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(toml))
    monkeypatch.setenv("TEMPORAL_PROFILE", "local")
    kwargs = connect_kwargs()
    assert (kwargs["tls"], kwargs["api_key"]) == (False, API_KEY)
    client = await connect()
    assert client.service_client.config.target_host == target
    assert client.service_client.config.api_key == API_KEY
    assert client.namespace == "default"
    assert await client.count_workflows() is not None


def test_worker_with_a_broken_profile_exits_with_the_reason_and_no_key(tmp_path: Path) -> None:
    missing = tmp_path / "client.pem"
    toml = write(
        tmp_path / "temporal.toml",
        f'[profile.cloud]\naddress = "{CLOUD}:7233"\napi_key = "{API_KEY}"\n'
        f'[profile.cloud.tls]\nclient_cert_path = "{missing}"\nclient_key_path = "{missing}"\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FIREWATCH_"))}
    env.update(
        TEMPORAL_CONFIG_FILE=str(toml),
        TEMPORAL_PROFILE="cloud",
        FIREWATCH_DATA_DIR=str(tmp_path / "data"),
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "worker.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"TLS file {missing}" in done.stderr
    assert API_KEY not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
