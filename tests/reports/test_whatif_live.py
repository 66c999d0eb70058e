"""``POST /reports/whatif`` and ``firewatch whatif`` against a real API (no worker) over a
real database holding the seeded what-if month (tests/reports/whatif_seeded.py). The
figures are the ones worked out by hand in tests/reports/test_whatif.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.policy import Override, Policy, Role
from storage.records import IncidentRecords
from storage.schedules import Schedules
from storage.whatif import overrides_during
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api
from tests.reports.whatif_seeded import END, RECORDS, START, at, shorter_p1_primary


def _seed(data: Path) -> None:
    database = Store(data).database
    records = IncidentRecords(database)
    for record in RECORDS:
        assert records.save(record)
    schedules = Schedules(database)
    # dave covers primary Nov 18 14:00-18:00 UTC (W5), made the day before.
    dave = Override(role=Role.PRIMARY, person="dave", start=at(18, 14), end=at(18, 18))
    schedules.add(lambda _active: [dave], actor="bob", now=at(17, 12))
    # An override over a quiet night, removed (today): stored with its removal time.
    quiet = Override(role=Role.SECONDARY, person="erin", start=at(26, 0), end=at(26, 6))
    [made] = schedules.add(lambda _active: [quiet], actor="bob", now=at(25, 12))
    schedules.remove(made.id, actor="bob")


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    data = tmp_path_factory.mktemp("whatif-data")
    async with running_api(
        dev_env, api_policy(default_policy), data, "whatif", with_worker=False
    ) as env:
        _seed(data)
        yield env.stack


@pytest.fixture
def firewatch(stack: ApiStack, tmp_path: Path) -> Iterator[CliRun]:
    yield cli_against(stack, tmp_path, user="erin")


def _proposed_text(stack: ApiStack) -> str:
    return yaml.safe_dump(shorter_p1_primary(stack.policy).model_dump(mode="json"))


def _post(stack: ApiStack, query: str, body: object) -> httpx.Response:
    url = f"{stack.url}/reports/whatif?{query}"
    return httpx.post(url, json=body, headers=stack.api_headers(), timeout=30)


def test_the_overrides_are_read_with_their_removal(stack: ApiStack) -> None:
    stored = overrides_during(Store(stack.data).database, START, END)
    assert [(s.override.person, s.removed_at is not None) for s in stored] == [
        ("dave", False),
        ("erin", True),
    ]


def test_the_whatif_as_json(stack: ApiStack) -> None:
    answer = _post(stack, "month=2026-11", {"policy": _proposed_text(stack)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["period"] == "2026-11" and body["incidents"] == 9  # X1 is October's
    assert (body["escalated_further"], body["escalated_less_far"], body["unchanged"]) == (4, 0, 5)
    assert (body["pages_actual"], body["pages_proposed"]) == (12, 16)
    assert (body["out_of_hours_actual"], body["out_of_hours_proposed"]) == (4, 5)
    people = {p["person"]: (p["actual"], p["proposed"]) for p in body["people"]}
    assert people == {
        "alice": (3, 3),
        "bob": (3, 5),
        "carol": (3, 4),
        "dave": (1, 2),  # W5 through the stored override
        "erin": (1, 1),
        "frank": (1, 1),
    }
    assert body["compliance_actual"]["met"] == body["compliance_proposed"]["met"] == 7
    assert body["differs_from_record"] == ["W7"]


def test_a_quarter(stack: ApiStack) -> None:
    answer = _post(stack, "quarter=2026Q4", {"policy": _proposed_text(stack)})
    assert answer.status_code == 200, answer.text
    # Q4 holds X1 (Oct 31 23:00 New York, acked at 10 > 5) as well: 5 escalate further.
    assert (answer.json()["incidents"], answer.json()["escalated_further"]) == (10, 5)


@pytest.mark.parametrize(
    ("query", "body", "locs"),
    [
        # A ladder window that is not a duration: the field is named.
        (
            "month=2026-11",
            {"policy": "SWAP"},
            ["body.policy.severities.P1.ladder.0.window"],
        ),
        ("month=2026-11", {"policy": "team: [unclosed"}, ["body.policy.(top level)"]),
        ("month=2026-13", {"policy": "SAME"}, ["query.month"]),
        ("", {"policy": "SAME"}, ["query.month"]),
        ("month=2026-11&quarter=2026Q4", {"policy": "SAME"}, ["query.month"]),
    ],
)
def test_bad_requests_are_422_and_change_nothing(
    stack: ApiStack, query: str, body: dict[str, str], locs: list[str]
) -> None:
    text = _proposed_text(stack)
    if body["policy"] == "SWAP":
        body = {"policy": text.replace("window: 5m", "window: soon", 1)}
        assert body["policy"] != text
    elif body["policy"] == "SAME":
        body = {"policy": text}
    before = IncidentRecords(Store(stack.data).database).all()
    answer = _post(stack, query, body)
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["errors"]] == locs
    assert IncidentRecords(Store(stack.data).database).all() == before


def test_without_a_token_it_is_refused(stack: ApiStack) -> None:
    url = f"{stack.url}/reports/whatif?month=2026-11"
    answer = httpx.post(url, json={"policy": _proposed_text(stack)}, timeout=10)
    assert answer.status_code == 401


def test_a_large_policy_is_read_while_the_api_answers(stack: ApiStack) -> None:
    """A proposed policy near the 500 KB limit takes about a second to parse; the API's
    event loop, which takes the alerts, must not wait for it. (Parsing in a thread still
    shares the GIL, so /health is slowed, never held for the whole parse.)"""
    runbooks = "".join(
        f"  svc{i}:\n    - step {i} of a runbook that is not one\n" for i in range(9000)
    )
    large = ("runbooks:\n" + runbooks)[:499_000]
    health: list[float] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        pending = pool.submit(_post, stack, "month=2026-11", {"policy": large})
        time.sleep(0.1)  # the request is in, its policy being parsed
        while not pending.done():
            sent = time.perf_counter()
            assert httpx.get(f"{stack.url}/health", timeout=10).status_code == 200
            health.append(time.perf_counter() - sent)
        answer = pending.result()
        whatif_s = time.perf_counter() - started
    assert answer.status_code == 422, answer.text  # read, and refused: no roster, no ladders
    assert max(health) < whatif_s / 2, f"/health waited for the parse ({whatif_s:.2f} s): {health}"
    assert len(health) >= 3, f"the policy was read before /health was asked: {health}"


def test_the_cli(firewatch: CliRun, stack: ApiStack, tmp_path: Path) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(_proposed_text(stack), encoding="utf-8")
    result = firewatch("whatif", "--policy", str(proposed), "--month", "2026-11")
    assert result.exit_code == 0, result.output
    assert "Pages                   12        16" in result.output
    assert "Escalates further: 4; less far: 0; same: 5" in result.output
    assert "W2 P1 api opened 2026-11-11 03:00 UTC, acked +7m by alice: level 1 -> 2" in (
        result.output
    )
    as_json = firewatch("whatif", "--policy", str(proposed), "--month", "2026-11", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["escalated_further"] == 4


def test_the_cli_names_the_file_and_field(firewatch: CliRun, tmp_path: Path) -> None:
    bad = tmp_path / "proposed.yaml"
    bad.write_text("team: X\nseverities: {}\nroster: {}\nbogus: 1\n", encoding="utf-8")
    result = firewatch("whatif", "--policy", str(bad), "--month", "2026-11")
    assert result.exit_code == 2
    assert f"{bad}: " in result.output and "bogus: Extra inputs are not permitted" in result.output
    missing = firewatch("whatif", "--policy", str(tmp_path / "nope.yaml"), "--month", "2026-11")
    assert missing.exit_code == 2 and "cannot read" in missing.output
    neither = firewatch("whatif", "--policy", str(bad))
    assert neither.exit_code == 2 and "--month" in neither.output
