"""How every Firewatch process (worker, API, CLI, supervisor) reaches Temporal.

Resolution order for the target and namespace:

1. explicit ``address`` / ``namespace`` arguments,
2. ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE``,
3. a Temporal env-config profile (``temporal.toml``), but only when a config
   file exists or ``TEMPORAL_PROFILE`` is set,
4. the local dev server on ``127.0.0.1:7233``, namespace ``default``.

TLS, API key and gRPC metadata come from the env-config machinery whenever an
external Temporal is configured, so Temporal Cloud works without code changes
(README "Temporal Cloud"). A ``TEMPORAL_CONFIG_FILE`` that does not exist, a
``TEMPORAL_PROFILE`` without a file or missing from it, and an unreadable TLS file are a
:class:`TemporalConfigError` naming the file, not a silent fall-back to the local server;
only ``make up``, which passes its embedded server's address, ignores a missing file.
Nothing here logs the API key: :func:`describe_connection` is the loggable form.

These ``TEMPORAL_*`` variables are the Temporal SDK's own (env config), read here and by
the SDK; they are not part of Firewatch's settings model (``activities.settings``), which
holds every ``FIREWATCH_*`` variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from activities.settings import DEFAULT_TASK_QUEUE, get_settings

TASK_QUEUE = DEFAULT_TASK_QUEUE
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"

# Variables that point at (or authenticate to) a Temporal outside this process tree.
# The supervisor strips them from its children when it runs its own dev server.
ENVCONFIG_VARS_PREFIXES = (
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_GRPC_META_",
    "TEMPORAL_CODEC_",
)


class TemporalConfigError(RuntimeError):
    """The Temporal env config cannot be used: a ``TEMPORAL_CONFIG_FILE`` that does not exist,
    a ``TEMPORAL_PROFILE`` the file lacks, a TOML error, a TLS file that cannot be read. The
    message names the file and profile, never a secret (the SDK's TOML errors quote the
    offending line, which may be an ``api_key``; only their position is kept)."""


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def default_config_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the Temporal SDK looks for ``temporal.toml`` (mirrors ``dirs::config_dir``)."""
    env = _env(environ)
    if env.get("TEMPORAL_CONFIG_FILE"):
        return Path(env["TEMPORAL_CONFIG_FILE"])
    home = env.get("HOME")
    base: Path | None
    if sys.platform == "darwin":
        base = Path(home) / "Library" / "Application Support" if home else None
    elif sys.platform == "win32":
        base = Path(env["APPDATA"]) if env.get("APPDATA") else None
    elif env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"])
    else:
        base = Path(home) / ".config" if home else None
    return base / "temporalio" / "temporal.toml" if base else None


def profile_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when an env-config profile should be consulted."""
    env = _env(environ)
    if env.get("TEMPORAL_PROFILE"):
        return True
    path = default_config_file(env)
    return path is not None and path.is_file()


def external_temporal_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the user pointed us at a Temporal we must not start ourselves."""
    env = _env(environ)
    return bool(env.get("TEMPORAL_ADDRESS")) or profile_configured(env)


def connect_kwargs(
    *,
    address: str | None = None,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect`` (without the data converter).

    Split out of :func:`connect` so the resolution order is testable without a server.
    """
    env = _env(environ)
    kwargs: dict[str, Any] = {}
    if external_temporal_configured(env):
        kwargs.update(_profile_kwargs(env))
    elif address is None and env.get("TEMPORAL_CONFIG_FILE"):
        _check_named_file(env)  # `make up` passes its embedded server's address instead
    # The profile loader already applies TEMPORAL_ADDRESS/NAMESPACE on top of the file;
    # repeating it here keeps the documented order explicit.
    kwargs["target_host"] = (
        address or env.get("TEMPORAL_ADDRESS") or kwargs.get("target_host") or DEFAULT_ADDRESS
    )
    kwargs["namespace"] = (
        namespace or env.get("TEMPORAL_NAMESPACE") or kwargs.get("namespace") or DEFAULT_NAMESPACE
    )
    return kwargs


def _check_named_file(env: Mapping[str, str]) -> None:
    named = env.get("TEMPORAL_CONFIG_FILE")
    if named and not Path(named).is_file():
        raise TemporalConfigError(
            f"TEMPORAL_CONFIG_FILE={named}: no such file (the Temporal env-config TOML file)"
        )


def _safe_message(exc: BaseException, env: Mapping[str, str]) -> str:
    """The first line of an SDK config error, without anything that may be a secret."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    first = first.removeprefix("Configuration loading error: ")
    key = env.get("TEMPORAL_API_KEY")
    return first.replace(key, "***") if key else first


def _profile_kwargs(env: Mapping[str, str]) -> dict[str, Any]:
    """``Client.connect`` arguments from the env-config profile and ``TEMPORAL_*`` variables."""
    _check_named_file(env)
    # With no config file we still load env vars only, so TEMPORAL_API_KEY / TLS apply.
    # The file path is passed explicitly: the SDK's own default lookup reads the
    # process environment even when ``override_env_vars`` is given.
    config_file = default_config_file(env)
    has_file = config_file is not None and config_file.is_file()
    name = env.get("TEMPORAL_PROFILE") or "default"
    where = f"profile {name!r} of {config_file}" if has_file else "TEMPORAL_* variables"
    if env.get("TEMPORAL_PROFILE") and not has_file:
        raise TemporalConfigError(
            f"TEMPORAL_PROFILE={name}: no Temporal config file at {config_file} "
            "(set TEMPORAL_CONFIG_FILE to the TOML file that defines the profile)"
        )
    try:
        profile = ClientConfigProfile.load(
            config_source=config_file if has_file else None,
            disable_file=not profile_configured(env),
            override_env_vars=dict(env),
        )
    except RuntimeError as exc:  # the SDK bridge's ConfigError
        raise TemporalConfigError(f"Temporal config: {where}: {_safe_message(exc, env)}") from None
    try:
        return dict(profile.to_client_connect_config())
    except OSError as exc:  # a TLS certificate, key or CA path that cannot be read
        raise TemporalConfigError(
            f"Temporal config: {where}: TLS file {exc.filename}: {exc.strerror}"
        ) from None


def describe_connection(kwargs: Mapping[str, Any]) -> str:
    """One loggable line for ``connect_kwargs()``'s result: target, namespace, TLS and whether
    an API key is set, never the key, the client key or gRPC metadata values."""
    tls = kwargs.get("tls")
    if isinstance(tls, TLSConfig):
        mode = "mTLS" if tls.client_cert and tls.client_private_key else "TLS"
    else:
        mode = "TLS" if tls else "plaintext"
    parts = [f"{kwargs.get('target_host')}", f"namespace {kwargs.get('namespace')}", mode]
    if kwargs.get("api_key"):
        parts.append("API key set")
    if kwargs.get("rpc_metadata"):
        parts.append(f"gRPC metadata {', '.join(sorted(kwargs['rpc_metadata']))}")
    return ", ".join(parts)


async def connect(
    *, address: str | None = None, namespace: str | None = None, runtime: Runtime | None = None
) -> Client:
    """Connect a client that (de)serialises pydantic models; ``runtime`` carries telemetry
    (the worker's Prometheus endpoint, see ``starter.worker_metrics``)."""
    kwargs = connect_kwargs(address=address, namespace=namespace)
    target_host = kwargs.pop("target_host")
    if runtime is not None:
        kwargs["runtime"] = runtime
    return await Client.connect(target_host, data_converter=pydantic_data_converter, **kwargs)


def temporal_ui_url() -> str:
    """Base URL of the Temporal Web UI, for links in notifications and the banner."""
    return get_settings().temporal_ui_url.rstrip("/")
