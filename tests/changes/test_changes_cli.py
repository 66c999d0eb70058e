"""``firewatch changes`` and ``firewatch change add`` against the real API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from starter import cli
from tests.api.api_support import unique
from tests.changes.conftest import Run

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def pinned_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(cli, "_now", lambda: NOW)
    return NOW


def post(http: httpx.Client, service: str, summary: str, who: str, at: str) -> None:
    body = {"service": service, "summary": summary, "who": who, "at": at}
    response = http.post("/changes", json=body)
    assert response.status_code == 201, response.text


def test_the_table_is_newest_first_in_utc(http: httpx.Client, firewatch: Run) -> None:
    # "storefront" is this test's alone: the golden text names it.
    post(http, "storefront", "Deploy v411", "alice", "2026-11-27T22:05:00Z")
    post(http, "storefront", "Flag checkout-v2 on for 10%", "bob", "2026-11-28T11:40:12+01:00")
    post(http, "storefront", "Deploy v412: " + "pool size " * 10, "ci", "2026-11-28T11:48:00Z")
    post(http, "storefront-db", "Index on orders(created_at)", "dba-team", "2026-11-28T11:00:00Z")

    result = firewatch("changes", "--service", "storefront")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "WHEN (UTC)           SERVICE     WHO    SUMMARY\n"
        "2026-11-28 11:48:00  storefront  ci     Deploy v412: pool size pool size pool size pool"
        " size pool s…\n"
        "2026-11-28 10:40:12  storefront  bob    Flag checkout-v2 on for 10%\n"
        "2026-11-27 22:05:00  storefront  alice  Deploy v411\n"
    )


def test_since_takes_a_duration_or_a_time(
    http: httpx.Client, firewatch: Run, pinned_now: datetime
) -> None:
    service = unique("orders")
    post(http, service, "three hours ago", "alice", "2026-11-28T09:00:00Z")
    post(http, service, "ninety minutes ago", "alice", "2026-11-28T10:30:00Z")
    post(http, service, "just now", "alice", "2026-11-28T11:59:00Z")

    def summaries(*args: str) -> list[str]:
        result = firewatch("changes", "--service", service, "--json", *args)
        assert result.exit_code == 0, result.output
        return [c["summary"] for c in json.loads(result.output)["changes"]]

    assert summaries() == ["just now", "ninety minutes ago", "three hours ago"]
    assert summaries("--since", "2h") == ["just now", "ninety minutes ago"]
    assert summaries("--since", "90m") == ["just now", "ninety minutes ago"]  # inclusive
    assert summaries("--since", "89m") == ["just now"]
    assert summaries("--since", "1d") == ["just now", "ninety minutes ago", "three hours ago"]
    assert summaries("--since", "7200s") == ["just now", "ninety minutes ago"]
    assert summaries("--since", "2026-11-28T10:00:00Z") == ["just now", "ninety minutes ago"]
    assert summaries("--since", "2026-11-28T11:00+01:00") == [
        "just now",
        "ninety minutes ago",
    ]
    # No offset: the team's time (New York, UTC-5): 05:00 there is 10:00 UTC.
    assert summaries("--since", "2026-11-28T05:00") == ["just now", "ninety minutes ago"]
    assert summaries("--since", "2026-11-28") == [
        "just now",
        "ninety minutes ago",
        "three hours ago",
    ]
    assert summaries("--since", "5m", "--limit", "5") == ["just now"]

    empty = firewatch("changes", "--service", service, "--since", "30s")
    assert (empty.exit_code, empty.output) == (0, "no changes match\n")


@pytest.mark.parametrize("since", ["yesterday", "2 hours", "-2h", "2y", ""])
def test_a_bad_since_is_a_one_line_usage_error(firewatch: Run, since: str) -> None:
    result = firewatch("changes", "--since", since)
    assert result.exit_code == 2
    assert result.output == (
        "firewatch: --since must be a duration like 30m, 2h or 7d, or an ISO 8601 time like"
        f" 2026-11-28T09:00 (team time) or 2026-11-28T14:00Z, not {since!r}\n"
    )


def test_json_is_the_apis_answer(http: httpx.Client, firewatch: Run) -> None:
    service = unique("payments")
    post(http, service, "Rotate the card-vault key", "erin", "2026-11-28T08:00:00Z")
    result = firewatch("changes", "--service", service, "--json")
    assert result.exit_code == 0, result.output
    listed = http.get("/changes", params={"service": service}).json()
    assert json.loads(result.output) == {"changes": listed}


def test_change_add_records_once_per_id(
    http: httpx.Client, firewatch: Run, pinned_now: datetime
) -> None:
    service = unique("api")
    args = ("change", "add", "--service", service, "--summary", "Deploy v412", "--who", "alice")
    first = firewatch(
        *args, "--id", "deploy-412", "--at", "2026-11-28T06:30", "--link", "https://ci.example/412"
    )  # team time (New York): 11:30 UTC
    assert first.exit_code == 0, first.output
    assert first.output == (
        f"Recorded change deploy-412 for {service} at 2026-11-28 11:30:00 UTC: Deploy v412\n"
    )
    again = firewatch(*args, "--id", "deploy-412")
    assert again.exit_code == 0, again.output
    assert again.output == (
        f"Already recorded change deploy-412 for {service} at 2026-11-28 11:30:00 UTC:"
        " Deploy v412\n"
    )
    [change] = http.get("/changes", params={"service": service}).json()
    assert (change["source"], change["who"]) == ("cli", "alice")
    assert change["links"] == [{"href": "https://ci.example/412", "text": None}]


def test_change_add_takes_who_from_firewatch_user(http: httpx.Client, firewatch: Run) -> None:
    service = unique("api")
    result = firewatch(
        "change", "add", "--service", service, "--summary", "Restart", FIREWATCH_USER="dave"
    )
    assert result.exit_code == 0, result.output
    [change] = http.get("/changes", params={"service": service}).json()
    assert change["who"] == "dave"
    missing = firewatch("change", "add", "--service", service, "--summary", "Restart")
    assert missing.exit_code == 2
    assert "--who" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--summary", " "), "firewatch: --summary must not be empty\n"),
        (("--summary", "x", "--at", "2h"), "firewatch: --at must be an ISO 8601 time like"),
    ],
)
def test_change_add_refuses_bad_input(firewatch: Run, args: tuple[str, ...], message: str) -> None:
    result = firewatch("change", "add", "--service", "api", "--who", "alice", *args)
    assert result.exit_code == 2
    assert result.output.startswith(message)


def test_no_changes(firewatch: Run) -> None:
    result = firewatch("changes", "--service", unique("quiet"))
    assert (result.exit_code, result.output) == (0, "no changes match\n")
