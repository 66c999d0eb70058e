"""Every ``FIREWATCH_*`` setting, in one pydantic-settings model.

:class:`Settings` reads the environment for every Firewatch process (worker, API, ``make up``,
CLI); nothing else reads a ``FIREWATCH_*`` variable. ``get_settings()`` returns it, cached (it
is built again only when a ``FIREWATCH_*`` variable changes, so tests that set one see it).
The settings are grouped in plain frozen models, which :class:`Settings` combines:
``StorageSettings``, ``WorkerSettings``, ``ApiSettings``, ``UpSettings``, ``CliSettings``,
``ChannelSettings`` (Slack, Twilio, SMTP, delivery) and ``RunbookSettings``. A component
takes the group it needs, so ``get_settings()`` can be passed where a ``ChannelSettings`` or
``ApiSettings`` is expected, and tests build a group directly
(``ChannelSettings(slack_bot_token=...)``, ``ApiSettings(task_queue=...)``), which reads no
environment, or ``Settings(**overrides)``.

Each field is one variable: ``FIREWATCH_`` + the field name in capitals, unless the field
names its variable (``validation_alias``, e.g. ``FIREWATCH_API_RETRY_AFTER``). Empty values
count as unset. A bad value is a :class:`SettingsError` that names the variable. Secrets
are :class:`pydantic.SecretStr` (their repr is ``'**********'``), so settings can be logged;
activities read them here, so they never travel in workflow payloads.

The ``TEMPORAL_*`` variables (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_PROFILE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*``, ...) are not Firewatch's: the Temporal SDK's env
config reads them (``starter.connection``), and they are not declared here.

README.md's configuration table is rendered from this model::

    .venv/bin/python -m activities.settings --readme    # rewrite it in README.md
    .venv/bin/python -m activities.settings             # print it
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "FIREWATCH_"
DEFAULT_TASK_QUEUE = "firewatch"
DEFAULT_API_URL = "http://127.0.0.1:8000"
MAX_BODY_BYTES = 512 * 1024  # PagerDuty's limit for an Events API v2 request

RealChannel = Literal["slack", "sms", "voice", "email"]
ALL_CHANNELS: tuple[RealChannel, ...] = ("sms", "voice", "slack", "email")


class SettingsError(ValueError):
    """A ``FIREWATCH_*`` variable holds a value its setting cannot take (named in the message)."""


class _Group(BaseModel):
    # Built directly (tests), a group reads no environment and refuses unknown names.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)


# ---- the groups ---------------------------------------------------------------------------


class StorageSettings(_Group):
    data_dir: Path = Field(
        Path(".data"),
        description="Where Firewatch keeps its state: the SQLite database (outbox, "
        "incident numbers, tickets, post-mortems, secrets, added integrations) unless "
        "`FIREWATCH_DATABASE_URL` is set, the ticket mirror, the embedded Temporal's "
        "database. Worker and API must share it",
    )
    policy: Path | None = Field(
        None,
        description="Path of the policy YAML; unset: the built-in `domain/default_policy.yaml`",
    )
    # repr=False: a database URL may carry a password.
    database_url: str | None = Field(
        None,
        repr=False,
        description="SQLAlchemy URL of the store; unset: the SQLite file in the data dir",
    )
    document_mirror: bool | None = Field(
        None,
        description="Also write each ticket and post-mortem as a file in the data dir "
        "(`tickets/`, `postmortems/`); the database holds them either way. Unset: on with "
        "the embedded SQLite database, off with `FIREWATCH_DATABASE_URL` (one worker's disk "
        "is not shared); `firewatch export` writes them all on demand",
    )


class WorkerSettings(_Group):
    workflow_sandbox: bool = Field(
        False,
        description="Run workflows in Temporal's workflow sandbox (`1`): slower, catches "
        "non-deterministic calls; the test suite sets it (see Durability)",
    )
    max_cached_workflows: int = Field(
        3000,
        description="Incidents the worker keeps in memory (about 200 KiB each); the others "
        "are replayed from their history when they wake. Keep it above the incidents one "
        "worker holds open at once: beyond it, every step of every incident replays",
    )
    worker_metrics_address: str | None = Field(
        None,
        description="`host:port` the worker serves the Temporal SDK's Prometheus metrics on "
        "(`/metrics`: task slots, schedule-to-start latencies, for autoscaling), e.g. "
        "`0.0.0.0:9464`; unset: no metrics endpoint",
    )


class ApiSettings(_Group):
    task_queue: str = Field(
        DEFAULT_TASK_QUEUE,
        description="Temporal task queue: the worker polls it, the API starts incidents on it",
    )
    max_in_flight: int = Field(
        256,
        validation_alias="FIREWATCH_API_MAX_IN_FLIGHT",
        description="Requests the API handles at once; beyond that it answers 429 "
        "(503 to webhooks)",
    )
    retry_after_s: int = Field(
        5,
        validation_alias="FIREWATCH_API_RETRY_AFTER",
        description="Seconds in the `Retry-After` of the API's 429 and 503 answers",
    )
    temporal_retry_s: float = Field(
        2.0,
        validation_alias="FIREWATCH_API_TEMPORAL_RETRY",
        description="Seconds the API retries an unreachable Temporal before answering 503",
    )
    worker_timeout_s: float = Field(
        20.0,
        validation_alias="FIREWATCH_API_WORKER_TIMEOUT",
        description="Seconds the API waits for a worker (incident id, queries, updates) "
        "before answering 503",
    )
    # A protocol limit, not a setting.
    max_body_bytes: ClassVar[int] = MAX_BODY_BYTES


class UpSettings(_Group):
    temporal_port: int = Field(
        7233, ge=1, le=65535, description="gRPC port of the embedded Temporal dev server"
    )
    ui_port: int = Field(
        8233, ge=1, le=65535, description="Web UI port of the embedded Temporal dev server"
    )
    api_host: str = Field(
        "127.0.0.1", description="Address `make up` serves the API on (`0.0.0.0`: all)"
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port `make up` serves the API on")


class CliSettings(_Group):
    api_url: str = Field(
        DEFAULT_API_URL, description="The API the `firewatch` CLI talks to (`--api` overrides)"
    )
    api_token: SecretStr | None = Field(
        None,
        description="API token for the CLI and the API, instead of the one generated into "
        "the database (e.g. one shared by a team)",
    )
    user: str | None = Field(
        None,
        description="Default of the CLI's `--by` (who is acting); the CLI's option parser reads it",
    )


class SlackSettings(_Group):
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (`xoxb-…`): switches Slack on"
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        description="Signing secret: verifies Slack's requests (buttons, modal, `/incident`)",
    )
    slack_base_url: str = Field("https://slack.com/api/", description="Slack Web API base URL")
    slack_channel: str | None = Field(None, description="Overrides the policy's #incidents")
    slack_stakeholder_channel: str | None = Field(
        None, description="Overrides the policy's #stakeholders"
    )


class TwilioSettings(_Group):
    twilio_account_sid: str | None = Field(
        None,
        description="Account SID; with the auth token and the sending number it switches "
        "SMS and voice on",
    )
    twilio_auth_token: SecretStr | None = Field(
        None, description="Auth token; also verifies Twilio's webhook signatures"
    )
    twilio_from: str | None = Field(None, description="Sending number (E.164)")
    twilio_base_url: str = Field("https://api.twilio.com", description="Twilio REST API base URL")
    twilio_mps: float = Field(
        1.0,
        description=(
            "Messages per second per sending number, counted in each worker process"
            " (Twilio's long-code rate: 1). With several workers the sum can exceed it;"
            " Twilio queues the excess, and its 429s are retried"
        ),
    )


class SmtpSettings(_Group):
    smtp_host: str | None = Field(
        None, description="SMTP relay; with the sender address it switches email on"
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_username: str | None = Field(None, description="SMTP user name")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_from: str | None = Field(None, description="Sender address")
    smtp_starttls: bool = Field(True, description="Upgrade the connection with STARTTLS")
    smtp_ca_file: str | None = Field(None, description="CA bundle of a private relay")


class ChannelSettings(SlackSettings, TwilioSettings, SmtpSettings):
    """Which delivery channels are switched on. With none, every notification goes to the
    outbox only (the embedded default, printed by ``make up``)."""

    channels: str | None = Field(
        None,
        description="Allow-list of real channels, e.g. `slack,email` (`slack`, `sms`, `voice` "
        "or `phone`, `email`): switches off a channel whose credentials are set; unset: "
        "every configured channel",
    )
    public_url: str | None = Field(
        None,
        description="The URL Slack and Twilio call Firewatch on, when a proxy changes it "
        "(for signature checks); also the base of the links people open (the monthly "
        "report's charts)",
    )
    temporal_ui_url: str = Field(
        "http://localhost:8233",
        description="Temporal Web UI, for links in notifications and the `make up` banner",
    )
    http_timeout: float = Field(
        10.0, description="Seconds before a call to Slack, Twilio or SMTP times out"
    )

    def _allowed(self, channel: RealChannel) -> bool:
        if not self.channels:
            return True
        wanted = {c.strip().lower() for c in self.channels.split(",") if c.strip()}
        return channel in wanted or (channel == "voice" and "phone" in wanted)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self._allowed("slack")

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from)

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_from) and self._allowed("email")

    def enabled_channels(self) -> frozenset[RealChannel]:
        """The real channels notifications may use; empty means outbox only."""
        on: set[RealChannel] = set()
        if self.slack_enabled:
            on.add("slack")
        if self.twilio_configured:
            on.update(c for c in ("sms", "voice") if self._allowed(c))
        if self.email_enabled:
            on.add("email")
        return frozenset(on)

    def incidents_channel(self, policy_channel: str) -> str:
        return self.slack_channel or policy_channel

    def stakeholders_channel(self, policy_channel: str) -> str:
        return self.slack_stakeholder_channel or policy_channel

    def describe(self) -> str:
        """One line for the worker's start-up log (no secrets)."""
        on = sorted(self.enabled_channels())
        return "channels: " + (", ".join(on) if on else "none (outbox only)")


class RunbookSettings(_Group):
    """What runbook checks and mitigation actions may reach from this worker."""

    runbook_commands: bool = Field(
        False,
        description="Allow runbook `command` checks and mitigations on this worker (`1`): "
        "the policy's argv, run without a shell, with a timeout and capped output; "
        "off: they end with an error saying so",
    )
    prometheus_url: str | None = Field(
        None,
        description="Prometheus base URL for `prometheus` checks, e.g. `http://prometheus:9090` "
        "(instant queries at `/api/v1/query`); unset: those checks say no Prometheus is "
        "configured",
    )


# README order: (title, group); a group's rows are the fields it declares itself.
GROUPS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Data and policy", StorageSettings),
    ("Worker", WorkerSettings),
    ("HTTP API", ApiSettings),
    ("`make up`", UpSettings),
    ("CLI", CliSettings),
    ("Slack", SlackSettings),
    ("SMS and voice (Twilio)", TwilioSettings),
    ("Email (SMTP)", SmtpSettings),
    ("Delivery", ChannelSettings),
    ("Runbooks", RunbookSettings),
)


# ---- the one model ------------------------------------------------------------------------


class _EnvSource(EnvSettingsSource):
    """The environment, one variable per field: a field that names its variable
    (``validation_alias``) is read from that variable only, not also from
    ``FIREWATCH_<field name>`` (which ``validate_by_name`` would otherwise allow)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value, key, is_complex = super().get_field_value(field, field_name)
        alias = field.validation_alias
        if isinstance(alias, str) and key != alias:
            return None, alias, is_complex
        return value, key, is_complex


class Settings(
    BaseSettings,
    StorageSettings,
    WorkerSettings,
    ApiSettings,
    UpSettings,
    CliSettings,
    ChannelSettings,
    RunbookSettings,
):
    """Every ``FIREWATCH_*`` variable. Build it with :func:`get_settings` (or
    ``Settings(**overrides)`` in tests: keyword arguments win over the environment)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls), dotenv_settings, file_secret_settings)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The environment plus ``overrides``; a bad value raises :class:`SettingsError`."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise _named(exc) from None


def env_var(field_name: str) -> str:
    """The variable a field is read from, e.g. ``FIREWATCH_API_RETRY_AFTER``."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field_name.upper()


def _is_secret(field: FieldInfo) -> bool:
    return not field.repr or SecretStr in (field.annotation, *get_args(field.annotation))


def _named(exc: ValidationError) -> SettingsError:
    by_key = {name: name for name in Settings.model_fields}
    by_key.update({env_var(name): name for name in Settings.model_fields})
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else ""
        name = by_key.get(key)
        if name is None:
            problems.append(f"{key}: {error['msg']}")
            continue
        shown = "" if _is_secret(Settings.model_fields[name]) else f"={error.get('input')!r}"
        problems.append(f"{env_var(name)}{shown}: {error['msg']}")
    return SettingsError("; ".join(problems))


def _firewatch_environ() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))


@lru_cache(maxsize=4)
def _settings_for(environ: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.load()


def get_settings() -> Settings:
    """This process's settings, from the environment: the same object until a ``FIREWATCH_*``
    variable changes. Raises :class:`SettingsError` naming a variable with a bad value."""
    return _settings_for(_firewatch_environ())


# ---- README.md's configuration table ------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_BEGIN = (
    "<!-- configuration table: generated from activities/settings.py by "
    "`.venv/bin/python -m activities.settings --readme`, do not edit -->"
)
TABLE_END = "<!-- end of configuration table -->"


def _own_fields(group: type[BaseModel]) -> list[str]:
    inherited = {
        name
        for base in group.__mro__[1:]
        if isinstance(base, type) and issubclass(base, BaseModel)
        for name in base.model_fields
    }
    return [name for name in group.model_fields if name not in inherited]


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def render_table() -> str:
    """The configuration table: one row per variable, grouped, in the order above."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for title, group in GROUPS:
        lines.append(f"| **{title}** | | |")
        for name in _own_fields(group):
            field = Settings.model_fields[name]
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{env_var(name)}` | {_default(field)} | {meaning} |")
    return "\n".join(lines) + "\n"


def readme_block() -> str:
    return f"{TABLE_BEGIN}\n\n{render_table()}\n{TABLE_END}"


def readme_with_table(text: str) -> str:
    """``text`` (README.md) with the generated table between its markers."""
    begin, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if begin < 0 or end < begin:
        raise SettingsError(f"README.md lacks the markers {TABLE_BEGIN} ... {TABLE_END}")
    return text[:begin] + readme_block() + text[end + len(TABLE_END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m activities.settings", description="Firewatch's configuration table."
    )
    parser.add_argument(
        "--readme", action="store_true", help="rewrite the table in README.md (else print it)"
    )
    args = parser.parse_args(argv)
    if not args.readme:
        sys.stdout.write(render_table())
        return 0
    text = README.read_text(encoding="utf-8")
    updated = readme_with_table(text)
    if updated != text:
        README.write_text(updated, encoding="utf-8")
    print(f"{README}: configuration table {'updated' if updated != text else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
