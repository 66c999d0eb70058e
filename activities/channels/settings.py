"""Which delivery channels are switched on: the channel part of the settings.

The variables (Slack, Twilio, SMTP, ``FIREWATCH_CHANNELS``, ...) are fields of the one
settings model, :mod:`activities.settings`, and documented in README.md's configuration
table. With nothing configured every notification goes to the outbox only (the embedded
default, printed by ``make up``). ``FIREWATCH_CHANNELS`` (e.g. ``slack,email``) narrows the
configured set further: the config switch for a channel whose credentials exist but which
should not be used.

Secrets are :class:`pydantic.SecretStr`: their repr is ``'**********'``, so settings can be
logged, and they never travel in workflow payloads (activities read them from here).
"""

from __future__ import annotations

from activities.settings import ALL_CHANNELS, ChannelSettings, RealChannel, get_settings

__all__ = ["ALL_CHANNELS", "ChannelSettings", "RealChannel", "settings_from_env"]


def settings_from_env() -> ChannelSettings:
    """The process's settings (:func:`activities.settings.get_settings`), as channel settings."""
    return get_settings()
