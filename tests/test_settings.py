"""The one settings model: every FIREWATCH_* variable, its README table, its behaviour."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities import settings as settings_module
from activities.channels.settings import settings_from_env
from activities.config import data_dir, policy_path
from activities.settings import (
    ApiSettings,
    ChannelSettings,
    Settings,
    SettingsError,
    env_var,
    get_settings,
    readme_block,
    readme_with_table,
)
from starter import cli
from starter.api_client import DEFAULT_API_URL

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = ".venv/bin/python -m activities.settings --readme"
# What ships (the package, its container files) and the benchmarks: every FIREWATCH_* they
# name is a setting, and only activities/settings.py reads one.
SOURCES = [
    *(ROOT / "activities").rglob("*.py"),
    *(ROOT / "domain").rglob("*.py"),
    *(ROOT / "domain").rglob("*.yaml"),
    *(ROOT / "starter").rglob("*.py"),
    *(ROOT / "workflows").rglob("*.py"),
    *(ROOT / "storage").rglob("*.py"),
    ROOT / "worker.py",
    *(ROOT / "benchmarks").rglob("*.py"),
    ROOT / "Dockerfile",
    ROOT / "docker-compose.yml",
]
VARIABLES = {env_var(name) for name in Settings.model_fields}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No FIREWATCH_* from the developer's shell or the suite (the sandbox switch)."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("FIREWATCH_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_readme_table_is_generated_from_the_model() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = readme_with_table(readme)
    if readme != expected:
        diff = "".join(
            difflib.unified_diff(
                readme.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "README.md",
                "README.md as generated",
            )
        )
        pytest.fail(
            "README.md's configuration table differs from activities/settings.py; "
            f"regenerate it with `{REGENERATE}`.\n{diff}"
        )
    assert readme.count(readme_block()) == 1


def test_every_variable_has_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{env_var(name)} needs a description (README table)"


def test_every_firewatch_variable_the_code_names_is_a_setting() -> None:
    named: dict[str, set[str]] = {}
    for path in SOURCES:
        for var in re.findall(r"FIREWATCH_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")):
            named.setdefault(var, set()).add(str(path.relative_to(ROOT)))
    unknown = {var: sorted(paths) for var, paths in named.items() if var not in VARIABLES}
    assert not unknown, f"not declared in activities/settings.py: {unknown}"


def test_only_the_settings_model_reads_firewatch_variables() -> None:
    read = re.compile(r"(environ\.get\(|environ\[|getenv\()\s*[\"']FIREWATCH_")
    readers = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if path.suffix == ".py" and read.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.data_dir == Path(".data") and data_dir() == Path(".data").resolve()
    assert s.policy is None and policy_path() is None
    assert s.database_url is None
    assert s.task_queue == "firewatch"
    assert (s.max_in_flight, s.retry_after_s, s.temporal_retry_s, s.worker_timeout_s) == (
        256,
        5,
        2.0,
        20.0,
    )
    assert ApiSettings().max_body_bytes == 512 * 1024
    assert (s.temporal_port, s.ui_port, s.api_host, s.api_port) == (7233, 8233, "127.0.0.1", 8000)
    assert s.api_url == DEFAULT_API_URL and s.api_token is None and s.user is None
    assert s.workflow_sandbox is False and s.max_cached_workflows == 3000
    assert s.enabled_channels() == frozenset()
    assert s.describe() == "channels: none (outbox only)"
    assert s.temporal_ui_url == "http://localhost:8233" and s.http_timeout == 10.0
    assert (s.smtp_port, s.smtp_starttls, s.twilio_mps) == (587, True, 1.0)


def test_variables_are_read_by_their_names(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIREWATCH_DATA_DIR", "/srv/firewatch")
    clean_env.setenv("FIREWATCH_API_RETRY_AFTER", "9")
    clean_env.setenv("FIREWATCH_API_WORKER_TIMEOUT", "1.5")
    clean_env.setenv("FIREWATCH_WORKFLOW_SANDBOX", "1")
    clean_env.setenv("FIREWATCH_SLACK_BOT_TOKEN", "xoxb-1")
    clean_env.setenv("FIREWATCH_DATABASE_URL", "postgresql://fw:pw@db/firewatch")
    s = get_settings()
    assert s.data_dir == Path("/srv/firewatch")
    assert (s.retry_after_s, s.worker_timeout_s, s.workflow_sandbox) == (9, 1.5, True)
    assert s.slack_enabled and s.database_url == "postgresql://fw:pw@db/firewatch"


def test_one_variable_per_setting(clean_env: pytest.MonkeyPatch) -> None:
    # FIREWATCH_API_RETRY_AFTER is the variable; the field's name is no second one.
    clean_env.setenv("FIREWATCH_RETRY_AFTER_S", "9")
    clean_env.setenv("RETRY_AFTER_S", "9")
    assert Settings().retry_after_s == 5


def test_empty_values_are_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_CHANNEL", "API_PORT", "DATA_DIR", "API_TOKEN", "CHANNELS"):
        clean_env.setenv(f"FIREWATCH_{name}", "")
    s = Settings()
    assert (s.slack_channel, s.api_port, s.data_dir, s.api_token, s.channels) == (
        None,
        8000,
        Path(".data"),
        None,
        None,
    )


def test_get_settings_is_cached_until_a_variable_changes(clean_env: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first and settings_from_env() is first
    clean_env.setenv("FIREWATCH_TASK_QUEUE", "other")
    assert get_settings().task_queue == "other"
    clean_env.delenv("FIREWATCH_TASK_QUEUE")
    assert get_settings() is first


def test_overrides_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIREWATCH_TASK_QUEUE", "from-env")
    clean_env.setenv("FIREWATCH_API_RETRY_AFTER", "9")
    s = Settings(task_queue="mine", retry_after_s=1, FIREWATCH_API_WORKER_TIMEOUT=3)
    assert (s.task_queue, s.retry_after_s, s.worker_timeout_s) == ("mine", 1, 3.0)
    assert Settings.load(api_port=9000).api_port == 9000


def test_groups_read_no_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIREWATCH_SLACK_BOT_TOKEN", "xoxb-leak")
    clean_env.setenv("FIREWATCH_TASK_QUEUE", "leak")
    assert ChannelSettings().slack_bot_token is None
    assert ApiSettings(worker_timeout_s=15).task_queue == "firewatch"
    with pytest.raises(ValidationError):
        ChannelSettings(slack_bot_tokn="typo")  # type: ignore[call-arg]
    # The one model is every group: it goes wherever a group is expected.
    s = get_settings()
    assert isinstance(s, ChannelSettings) and isinstance(s, ApiSettings)


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        get_settings().task_queue = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ChannelSettings().http_timeout = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ApiSettings().worker_timeout_s = 1.0  # type: ignore[misc]


def test_channels_allow_list() -> None:
    twilio = {"twilio_account_sid": "AC1", "twilio_auth_token": "t", "twilio_from": "+15550100"}
    smtp = {"smtp_host": "mail", "smtp_from": "fw@example.com"}
    everything = ChannelSettings(slack_bot_token="xoxb", **twilio, **smtp)
    assert everything.enabled_channels() == {"slack", "sms", "voice", "email"}
    only = ChannelSettings(slack_bot_token="xoxb", channels=" Slack, phone ", **twilio, **smtp)
    assert only.enabled_channels() == {"slack", "voice"}
    assert ChannelSettings(channels="email", **twilio).enabled_channels() == frozenset()
    assert ChannelSettings(channels="sms", **twilio).describe() == "channels: sms"


def test_secrets_stay_out_of_reprs(clean_env: pytest.MonkeyPatch) -> None:
    secrets = {
        "FIREWATCH_SLACK_BOT_TOKEN": "xoxb-secret-1",
        "FIREWATCH_SLACK_SIGNING_SECRET": "signing-secret-2",
        "FIREWATCH_TWILIO_AUTH_TOKEN": "twilio-secret-3",
        "FIREWATCH_SMTP_PASSWORD": "smtp-secret-4",
        "FIREWATCH_API_TOKEN": "api-secret-5",
        "FIREWATCH_DATABASE_URL": "postgresql://fw:db-secret-6@db/firewatch",
    }
    for key, value in secrets.items():
        clean_env.setenv(key, value)
    s = get_settings()
    shown = f"{s!r} {s} {s.describe()}"
    assert [value for value in secrets.values() if value in shown] == []
    assert s.api_token is not None and s.api_token.get_secret_value() == "api-secret-5"


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("FIREWATCH_API_PORT", "http", "FIREWATCH_API_PORT='http': Input should be a valid"),
        ("FIREWATCH_TEMPORAL_PORT", "70000", "FIREWATCH_TEMPORAL_PORT='70000': Input should be"),
        ("FIREWATCH_API_RETRY_AFTER", "soon", "FIREWATCH_API_RETRY_AFTER='soon': Input"),
        ("FIREWATCH_WORKFLOW_SANDBOX", "maybe", "FIREWATCH_WORKFLOW_SANDBOX='maybe': Input"),
        ("FIREWATCH_SMTP_STARTTLS", "perhaps", "FIREWATCH_SMTP_STARTTLS='perhaps': Input"),
    ],
)
def test_a_bad_value_names_its_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, shown: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        get_settings()
    assert str(caught.value).startswith(shown)


def test_cli_by_option_reads_the_declared_variable() -> None:
    assert "FIREWATCH_USER" in VARIABLES
    assert cli.ByOpt.__metadata__[0].envvar == env_var("user")


def test_cli_reports_a_bad_setting_in_one_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FIREWATCH_API_TOKEN", "t")
    clean_env.setenv("FIREWATCH_HTTP_TIMEOUT", "slow")
    with pytest.raises(cli.CliError, match=r"^invalid setting: FIREWATCH_HTTP_TIMEOUT='slow'"):
        cli.load_token()


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings_module.main([]) == 0
    assert capsys.readouterr().out == settings_module.render_table()
