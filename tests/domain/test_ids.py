"""Workflow ids: explicit dedup keys as they are, generated ones readable in the Temporal UI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import (
    SERVICE_SLUG_MAX,
    SUMMARY_SLUG_MAX,
    incident_workflow_id,
    readable_dedup_key,
    slug,
)

AT = datetime(2026, 11, 28, 9, 15, 42, tzinfo=UTC)
# What a generated key may contain before its nonce: lowercase words, the UTC minute.
READABLE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*-\d{4}-\d{2}-\d{2}T\d{4}Z(-[a-z0-9]+)*$")
BEFORE_NONCE_MAX = SERVICE_SLUG_MAX + 1 + len("2026-11-28T0915Z") + 1 + SUMMARY_SLUG_MAX


def test_explicit_keys_keep_their_meaning() -> None:
    assert incident_workflow_id("checkout-down") == "incident/direct/checkout-down"
    assert incident_workflow_id("fp:1a2b", "alertmanager") == "incident/alertmanager/fp:1a2b"
    hashed = incident_workflow_id("has spaces", "pagerduty")
    assert re.fullmatch(r"incident/pagerduty/sha256-[0-9a-f]{32}", hashed)
    assert hashed == incident_workflow_id("has spaces", "pagerduty")  # stable
    assert incident_workflow_id("x" * 201) != f"incident/direct/{'x' * 201}"


def test_slug() -> None:
    assert slug("API p99 > 5s", 60) == "api-p99-5s"
    assert slug("  Zahlungsdienst überlastet — 503 auf /checkout ", 60) == (
        "zahlungsdienst-uberlastet-503-auf-checkout"
    )
    assert slug("数据库", 60) == ""
    assert slug("disk full on db-1 and db-2", 16) == "disk-full-on-db"  # at a word boundary
    assert slug("x" * 100, 10) == "x" * 10  # one long word is cut


def test_readable_key_names_service_time_and_summary() -> None:
    key = readable_dedup_key("api", "API p99 > 5s", nonce="3f9c2a17", at=AT)
    assert key == "api-2026-11-28T0915Z-api-p99-5s-3f9c2a17"
    assert incident_workflow_id(key) == f"incident/direct/{key}"
    assert incident_workflow_id(key, "generic") == f"incident/generic/{key}"


def test_readable_key_time_is_utc() -> None:
    berlin = AT.astimezone(timezone(timedelta(hours=1)))
    assert readable_dedup_key("api", "x", nonce="n", at=berlin) == "api-2026-11-28T0915Z-x-n"


def test_readable_key_without_time_or_words() -> None:
    assert readable_dedup_key("Checkout API", "Down!", nonce="t.1") == "checkout-api-down-t.1"
    assert readable_dedup_key("数据库", "数据库", nonce="ab", at=AT) == (
        "incident-2026-11-28T0915Z-ab"
    )


@given(
    service=st.text(min_size=1, max_size=300),
    summary=st.text(min_size=1, max_size=1024),
    at=st.datetimes(timezones=st.just(UTC)),
    nonce=st.text("0123456789abcdef", min_size=8, max_size=8),
)
def test_readable_key_stays_readable_and_short(
    service: str, summary: str, at: datetime, nonce: str
) -> None:
    key = readable_dedup_key(service, summary, nonce=nonce, at=at)
    assert key.endswith(f"-{nonce}")
    before = key.removesuffix(f"-{nonce}")
    assert READABLE.match(before), before
    assert len(before) <= BEFORE_NONCE_MAX
    # Not hashed: the workflow id shows the key itself, far below Temporal's id limit.
    assert incident_workflow_id(key, "x" * 200) == f"incident/{'x' * 200}/{key}"
