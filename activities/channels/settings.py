"""Which delivery channels are switched on, from the environment.

With nothing configured every notification goes to the outbox only (the embedded
default, printed by ``make up``). A channel is on when its credentials are set:

* Slack:  FIREWATCH_SLACK_BOT_TOKEN (and FIREWATCH_SLACK_SIGNING_SECRET for buttons and
  /incident); FIREWATCH_SLACK_BASE_URL, FIREWATCH_SLACK_CHANNEL (overrides the policy's
  #incidents), FIREWATCH_SLACK_STAKEHOLDER_CHANNEL (overrides #stakeholders).
* SMS and voice:  FIREWATCH_TWILIO_ACCOUNT_SID, FIREWATCH_TWILIO_AUTH_TOKEN,
  FIREWATCH_TWILIO_FROM; FIREWATCH_TWILIO_BASE_URL, FIREWATCH_TWILIO_MPS (messages per
  second per sending number, Twilio's long-code throttle: 1).
* Email:  FIREWATCH_SMTP_HOST, FIREWATCH_SMTP_FROM; FIREWATCH_SMTP_PORT (587),
  FIREWATCH_SMTP_USERNAME, FIREWATCH_SMTP_PASSWORD, FIREWATCH_SMTP_STARTTLS (true),
  FIREWATCH_SMTP_CA_FILE (a private relay's CA).

FIREWATCH_CHANNELS (e.g. ``slack,email``) narrows the configured set further: the config
switch for a channel whose credentials exist but which should not be used.

Secrets are :class:`pydantic.SecretStr`: their repr is ``'**********'``, so settings can be
logged, and they never travel in workflow payloads (activities read them from here).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

RealChannel = Literal["slack", "sms", "voice", "email"]
ALL_CHANNELS: tuple[RealChannel, ...] = ("sms", "voice", "slack", "email")


class ChannelSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIREWATCH_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_base_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    slack_stakeholder_channel: str | None = None
    # Twilio
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    twilio_mps: float = 1.0
    # SMTP
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_starttls: bool = True
    smtp_ca_file: str | None = None
    # General
    channels: str | None = None  # allow-list, e.g. "slack,email"
    public_url: str | None = None  # the URL Twilio and Slack call us on (signatures)
    temporal_ui_url: str = "http://localhost:8233"
    http_timeout: float = 10.0

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


@lru_cache(maxsize=1)
def settings_from_env() -> ChannelSettings:
    return ChannelSettings()
