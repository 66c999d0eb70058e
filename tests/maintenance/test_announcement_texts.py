"""The announcements in #incidents, as people read them: a golden text.

    FIREWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/maintenance/test_announcement_texts.py

(the workflow test checks that what the worker posts is exactly this rendering).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.messages import (
    MaintenanceEndedMessage,
    MaintenanceMessage,
    MaintenanceStartedMessage,
)
from domain.templates import render_maintenance_message
from tests.conftest import load_default_policy

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "maintenance_announcements.txt"
REGENERATE = os.environ.get("FIREWATCH_REGEN_GOLDEN") == "1"
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_announcements_read_as_the_golden_text() -> None:
    policy = load_default_policy()
    started = MaintenanceStartedMessage(
        window=3,
        service="api",
        reason="DB upgrade",
        starts_at=START,
        ends_at=START + timedelta(hours=2),
        by="alice",
    )
    messages: list[tuple[str, MaintenanceMessage]] = [
        ("started", started),
        (
            "ended as scheduled",
            MaintenanceEndedMessage(**started.model_dump(), ended_at=started.ends_at),
        ),
        (
            "ended early",
            MaintenanceEndedMessage(
                **started.model_dump(), ended_at=START + timedelta(minutes=70), ended_by="bob"
            ),
        ),
    ]
    parts = []
    for title, message in messages:
        rendered = render_maintenance_message(message, policy)
        parts.append(f"===== {title}\nSubject: {rendered.subject}\n\n{rendered.text}")
    text = "\n".join(parts)
    if REGENERATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        f"announcements differ from {GOLDEN}; if intended, regenerate with FIREWATCH_REGEN_GOLDEN=1"
    )
