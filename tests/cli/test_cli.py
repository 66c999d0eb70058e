"""The ``firewatch`` CLI against a real HTTP server on loopback.

The server below speaks the API contract (paths, JSON bodies, Bearer auth, FastAPI-style
errors) with canned but realistic state built from the domain models, and records every
request, so each test checks both what the CLI sent and exactly what it printed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from pydantic import BaseModel, Field, ValidationError
from typer.testing import CliRunner, Result

from domain.incident import IncidentState, LadderRun, Page, Status, TimelineEntry
from domain.policy import Role, Severity
from starter import cli
from starter import incidents as fw
from starter.api.incidents import IncidentSort
from starter.api_client import ApiError, ApiUnreachable, FirewatchClient, format_detail
from starter.secrets import ensure_secrets
from tests.conftest import load_default_policy

TOKEN = "s3cret-test-token-4f9a"
T0 = datetime(2026, 3, 3, 2, 14, 7, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)  # the CLI's clock in these tests
INC = "INC-2026-03-03-001"
FIREWATCH = Path(sys.executable).parent / "firewatch"


# ---- canned state -------------------------------------------------------------------------


def incident_state() -> IncidentState:
    """A P1 on `api`, paged to Alice a second after opening, not yet acknowledged."""
    return IncidentState(
        workflow_id="incident/direct/api-latency",
        incident_id=INC,
        dedup_key="api-latency",
        service="api",
        summary="API p99 latency above 5s",
        severity=Severity.P1,
        source="cli",
        opened_at=T0,
        alert_count=1,
        ladder=LadderRun(anchor=T0),
        replanned_at=T0,
        timeline=[
            TimelineEntry(
                at=T0, kind="opened", text="Alert triggered: API p99 latency above 5s (cli)"
            ),
            TimelineEntry(
                at=T0 + timedelta(seconds=1),
                kind="page",
                text="Paged Alice Andersen (Primary On-Call, level 1)",
            ),
        ],
        pages=[
            Page(at=T0, person="alice", role=Role.PRIMARY, level=0, step="e0-l0"),
        ],
        next_step_at=T0 + timedelta(minutes=15),
        next_step_label="page Secondary On-Call",
    )


PEOPLE = {
    "alice": ("Alice Andersen", "+15550100001", "U0ALICE"),
    "bob": ("Bob Berg", "+15550100002", "U0BOB"),
    "erin": ("Erin Eriksen", "+15550100005", "U0ERIN"),
    "frank": ("Frank Foss", "+15550100006", "U0FRANK"),
}


def person(name: str) -> dict[str, Any]:
    display, phone, slack = PEOPLE[name]
    return {
        "name": name,
        "display_name": display,
        "email": f"{name}@madplan.example",
        "phone": phone,
        "slack_user_id": slack,
        "contact_order": ["sms", "slack", "email"],
    }


def notification(n: int, kind: str, recipient: str, channel: str, subject: str) -> dict[str, Any]:
    at = (T0 + timedelta(seconds=n)).isoformat()
    return {
        "id": n,
        "idempotency_key": f"incident/direct/api-latency/{kind}/{n}",
        "incident_id": INC,
        "kind": kind,
        "recipient": recipient,
        "channel": channel,
        "subject": subject,
        "text": f"{subject}\nService: api\nAck: firewatch ack {INC} --by {recipient}",
        "scheduled_at": at,
        "recorded_at": at,
        "status": "sent",
    }


class TriggerBody(BaseModel):
    """Validates POST /incidents the way FastAPI would (for realistic 422s)."""

    service: str = Field(min_length=1, max_length=200)
    severity: Severity
    summary: str = Field(min_length=1, max_length=1024)
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)


# ---- the fake API ---------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """Contract-shaped responses; ``respond`` overrides the next matching request."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    incidents: dict[str, IncidentState] = field(default_factory=dict)
    overrides: dict[tuple[str, str], tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.overrides.clear()
            self.incidents = {INC: incident_state()}

    def respond(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.overrides[(method, path)] = (status, body, headers or {})

    @property
    def last(self) -> Recorded:
        assert self.requests, "the CLI sent no request"
        return self.requests[-1]

    # Returns (status, json body, extra headers).
    def handle(self, req: Recorded) -> tuple[int, Any, dict[str, str]]:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"detail": "missing or invalid API token"}, {}
        override = self.overrides.pop((req.method, req.path), None)
        if override is not None:
            return override
        parts = req.path.strip("/").split("/")
        if req.method == "POST" and parts == ["incidents"]:
            return self._trigger(req.body)
        if req.method == "GET" and parts == ["incidents"]:
            return 200, {"incidents": self._rows(req.query)}, {}
        if req.method == "GET" and parts == ["oncall"]:
            return 200, self._oncall(), {}
        if req.method == "GET" and parts == ["outbox"]:
            return 200, {"notifications": self._outbox(req.query)}, {}
        if req.method == "GET" and parts == ["integrations"]:
            return 200, {"integrations": self._integrations(req.query)}, {}
        if len(parts) >= 2 and parts[0] == "incidents":
            state = self.incidents.get(parts[1])
            if state is None:
                return 404, {"detail": f"no incident {parts[1]}"}, {}
            if req.method == "GET" and len(parts) == 2:
                return 200, state.model_dump(mode="json"), {}
            if req.method == "POST":
                return self._act(state, "/".join(parts[2:]), req.body)
        return 404, {"detail": "Not Found"}, {}

    def _trigger(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        try:
            TriggerBody.model_validate(body)
        except ValidationError as err:
            detail = [
                {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
                for e in err.errors()
            ]
            return 422, {"detail": detail}, {}
        state = incident_state()
        return 201, state.model_dump(mode="json"), {}

    def _rows(self, query: dict[str, str]) -> list[dict[str, Any]]:
        second = incident_state().model_copy(
            update={
                "incident_id": "INC-2026-03-02-004",
                "workflow_id": "incident/alertmanager/db-disk",
                "service": "db",
                "severity": Severity.P3,
                "status": Status.RESOLVED,
                "assignee": "bob",
                "opened_at": datetime(2026, 3, 2, 16, 40, tzinfo=UTC),
            }
        )
        rows = [
            {
                "incident_id": s.incident_id,
                "severity": s.severity.value,
                "status": s.status.value,
                "service": s.service,
                "assignee": s.assignee,
                "opened_at": s.opened_at.isoformat(),
                "workflow_id": s.workflow_id,
                "summary": s.summary,  # as the opening call recorded it
            }
            for s in (*self.incidents.values(), second)
        ]
        for key in ("status", "severity", "service"):
            if key in query:
                rows = [r for r in rows if r[key] == query[key]]
        return rows

    def _act(self, state: IncidentState, action: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if state.status == Status.RESOLVED:
            return 409, {"detail": f"{state.incident_id} is already resolved"}, {}
        by = body.get("by")
        if by is not None and by not in PEOPLE:
            return 409, {"detail": f"unknown person {by!r}"}, {}
        at = T0 + timedelta(minutes=4)
        log = state.timeline.append
        if action == "acknowledge":
            state.status, state.assignee = Status.INVESTIGATING, by
            state.acknowledged_by, state.acknowledged_at = by, at
            state.next_step_at = T0 + timedelta(minutes=34)
            state.next_step_label = "update reminder"
            log(TimelineEntry(at=at, kind="ack", text="Incident acknowledged", by=by))
        elif action == "updates":
            if body.get("status"):
                state.status = Status(body["status"])
            log(TimelineEntry(at=at, kind="update", text=body["message"], by=by))
        elif action == "severity":
            old, state.severity = state.severity, Severity(body["severity"])
            text = f"Severity changed {old.value} → {state.severity.value}"
            log(TimelineEntry(at=at, kind="severity", text=text, by=by))
        elif action == "escalate":
            state.next_step_at = at + timedelta(minutes=30)
            state.next_step_label = "page Team Lead"
            log(TimelineEntry(at=at, kind="escalate", text="Escalated to Secondary On-Call", by=by))
        elif action == "responders":
            state.responders.append(body["person"])
        elif action == "resolve":
            state.status, state.resolved_at, state.resolved_by = Status.RESOLVED, at, by
            state.root_cause, state.fix = body["root_cause"], body["fix"]
            state.false_positive = body["false_positive"]
            state.next_step_at = state.next_step_label = None
            log(TimelineEntry(at=at, kind="status", text="Issue resolved by Alice", by=by))
        elif action == "postmortem/held":
            held = {
                "incident_id": state.incident_id,
                "review_at": (T0 + timedelta(days=2)).isoformat(),
                "document_path": None,
                "attendees": ["alice", "erin"],
                "reminders_sent": 1,
                "held_at": NOW.isoformat(),
                "held_by": by,
                "notes": body.get("notes", ""),
            }
            return 200, held, {}
        else:
            return 404, {"detail": "Not Found"}, {}
        return 200, state.model_dump(mode="json"), {}

    def _oncall(self) -> dict[str, Any]:
        levels = [
            ("primary", "Primary On-Call", "alice"),
            ("secondary", "Secondary On-Call", "bob"),
            ("team_lead", "Team Lead", "erin"),
            ("engineering_manager", "Engineering Manager", "frank"),
        ]
        return {  # the shape of GET /oncall (starter.api.schedules.OnCall)
            "at": NOW.isoformat(),
            "team": "MadPlan",
            "timezone": "America/New_York",
            "roles": [{"role": r, "title": t, **person(p)} for r, t, p in levels],
        }

    def _outbox(self, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = [
            notification(1, "page", "alice", "sms", f"[P1] {INC} api: API p99 latency above 5s"),
            notification(
                2, "incident_channel", "#incidents", "slack", f"Incident Alert - P1 {INC}"
            ),
        ]
        if query.get("incident_id") not in (None, INC):
            return []
        return rows[-int(query["limit"]) :] if "limit" in query else rows

    def _integrations(self, query: dict[str, str]) -> list[dict[str, Any]]:
        show = query.get("show_secrets") == "true"
        return [
            {
                "name": "prod-alerts",
                "kind": "alertmanager",
                "service": "api",
                "url": "http://127.0.0.1:8000/alerts/alertmanager/prod-alerts",
                "key": "am-key-0123456789abcdef" if show else "am-k…cdef",
            }
        ]


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            req = Recorded(
                method=self.command,
                path=unquote(split.path),
                query=dict(parse_qsl(split.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            with api.lock:
                api.requests.append(req)
                status, body, headers = api.handle(req)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            ctype = "text/html" if isinstance(body, bytes) else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApi]:
    api = FakeApi()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def api(server: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    server.reset()
    monkeypatch.setattr(cli, "_now", lambda: NOW)
    return server


Run = Callable[..., Result]


@pytest.fixture
def run(api: FakeApi, tmp_path: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        base: dict[str, str | None] = {
            "FIREWATCH_API_URL": api.url,
            "FIREWATCH_API_TOKEN": TOKEN,
            "FIREWATCH_DATA_DIR": str(tmp_path),
            "FIREWATCH_USER": None,
        }
        result = runner.invoke(cli.app, list(args), env={**base, **(env or {})})
        # Never a traceback, never an unexpected exception, never the token.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert "Traceback" not in result.output
        assert TOKEN not in result.output
        return result

    return invoke


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def error(result: Result) -> str:
    """The single stderr line of a failed command."""
    assert result.exit_code != 0
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert len(err) == 1, result.stderr
    return err[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- trigger ------------------------------------------------------------------------------


def test_trigger_prints_the_incident_id_and_sends_the_contract_body(run: Run, api: FakeApi) -> None:
    result = run("trigger", "--service", "api", "--severity", "p1", "--summary", "API slow")
    assert result.exit_code == 0
    assert lines(result) == [INC]
    assert len(api.requests) == 1
    req = api.last
    assert (req.method, req.path, req.query) == ("POST", "/incidents", {})
    assert req.body == {"service": "api", "severity": "P1", "summary": "API slow"}
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"


def test_trigger_json_prints_the_state_and_sends_the_dedup_key(run: Run, api: FakeApi) -> None:
    result = run(
        "trigger",
        *("--service", "api", "--severity", "P1", "--summary", "API slow"),
        *("--dedup-key", "api-latency", "--json"),
    )
    assert result.exit_code == 0
    assert api.last.body == {
        "service": "api",
        "severity": "P1",
        "summary": "API slow",
        "dedup_key": "api-latency",
    }
    state = IncidentState.model_validate(json.loads(result.stdout))
    assert state == incident_state()


def test_trigger_rejects_a_bad_severity_without_calling_the_api(run: Run, api: FakeApi) -> None:
    result = run("trigger", "--service", "api", "--severity", "P5", "--summary", "x")
    assert result.exit_code == 2
    assert error(result) == "firewatch: severity must be one of P0, P1, P2, P3, not 'P5'"
    assert api.requests == []


def test_trigger_422_list_is_joined_as_field_messages(run: Run, api: FakeApi) -> None:
    result = run("trigger", "--service", "api", "--severity", "P2", "--summary", "x" * 1100)
    assert result.exit_code == 1
    assert error(result) == (
        "firewatch: summary: String should have at most 1024 characters (HTTP 422)"
    )


def test_a_422_whose_reason_is_its_field_message_says_it_once(run: Run, api: FakeApi) -> None:
    reason = "the window would already be over: it ends at 2026-11-29 01:00 UTC"
    body = {"detail": reason, "errors": [{"loc": ["body", "ends_at"], "msg": reason}]}
    api.respond("POST", "/incidents", 422, body)
    result = run("trigger", "--service", "api", "--severity", "P2", "--summary", "x")
    assert error(result) == f"firewatch: ends_at: {reason} (HTTP 422)"


def test_missing_required_option_is_one_line(run: Run, api: FakeApi) -> None:
    result = run("trigger", "--service", "api", "--severity", "P1")
    assert result.exit_code == 2
    assert error(result) == (
        "firewatch: Missing option '--summary' (see 'firewatch trigger --help')"
    )
    assert api.requests == []


# ---- listing and showing ------------------------------------------------------------------


def test_incidents_table(run: Run, api: FakeApi) -> None:
    result = run("incidents")
    assert result.exit_code == 0
    assert lines(result) == [
        "ID                  SEV  STATUS     SERVICE  ASSIGNEE  OPENED (UTC)      SUMMARY",
        "INC-2026-03-03-001  P1   Triggered  api      -         2026-03-03 02:14  "
        "API p99 latency above 5s",
        "INC-2026-03-02-004  P3   Resolved   db       bob       2026-03-02 16:40  "
        "API p99 latency above 5s",
    ]
    assert (api.last.method, api.last.path, api.last.query) == ("GET", "/incidents", {})


def test_incidents_filters_are_normalised_and_sent_as_query(run: Run, api: FakeApi) -> None:
    result = run("incidents", "--status", "resolved", "--severity", "p3", "--service", "db")
    assert result.exit_code == 0
    assert api.last.query == {"status": "Resolved", "severity": "P3", "service": "db"}
    assert [line.split()[0] for line in lines(result)] == ["ID", "INC-2026-03-02-004"]


def test_incidents_empty_and_json(run: Run, api: FakeApi) -> None:
    result = run("incidents", "--service", "nothing-here")
    assert result.exit_code == 0
    assert lines(result) == ["no incidents match"]
    result = run("incidents", "--severity", "P1", "--json")
    data = json.loads(result.stdout)
    assert [r["incident_id"] for r in data["incidents"]] == [INC]


def test_incidents_rejects_unknown_status(run: Run, api: FakeApi) -> None:
    result = run("incidents", "--status", "open")
    assert error(result) == (
        "firewatch: status must be one of Triggered, Investigating, Mitigating, Resolved, "
        "not 'open'"
    )
    assert api.requests == []


def test_incidents_sort_and_limit_are_sent_as_query(run: Run, api: FakeApi) -> None:
    assert run("incidents", "--sort", "Severity", "--limit", "5").exit_code == 0
    assert api.last.query == {"sort": "severity", "limit": "5"}
    assert run("incidents", "--sort", "-opened").exit_code == 0  # the default: not sent
    assert api.last.query == {}
    assert run("incidents", "--sort=opened", "--status", "Resolved").exit_code == 0
    assert api.last.query == {"sort": "opened", "status": "Resolved"}


def test_incidents_rejects_an_unknown_sort(run: Run, api: FakeApi) -> None:
    result = run("incidents", "--sort", "newest")
    assert result.exit_code == 2
    assert error(result) == (
        "firewatch: sort must be one of -opened, opened, severity, status, not 'newest'"
    )
    assert api.requests == []


def test_incidents_summary_column_is_truncated(run: Run, api: FakeApi) -> None:
    rows = api.handle(_get("/incidents"))[1]["incidents"]
    rows[0]["summary"] = "Checkout p99 above 5s for EU customers;\nretries exhausted " + "x" * 60
    rows[1]["summary"] = None  # an incident opened before summaries were recorded
    api.respond("GET", "/incidents", 200, rows)
    table = lines(run("incidents"))
    summary_at = table[0].index("SUMMARY")
    assert table[1][summary_at:] == ("Checkout p99 above 5s for EU customers; retries exhausted x…")
    assert len(table[1][summary_at:]) == cli.SUMMARY_WIDTH
    assert table[2][summary_at:] == "-"


def test_show_header_and_timeline(run: Run, api: FakeApi) -> None:
    result = run("show", INC)
    assert result.exit_code == 0
    assert lines(result) == [
        "INC-2026-03-03-001  P1  Triggered  api",
        "summary          API p99 latency above 5s",
        "assignee         unassigned",
        "opened           02:14:07 UTC (5m ago)",
        "acknowledged     no",
        "next escalation  page Secondary On-Call at 02:29:07 UTC (in 10m)",
        "",
        "Timeline, 2026-03-03 (UTC)",
        "02:14:07  Alert triggered: API p99 latency above 5s (cli)",
        "02:14:08  Paged Alice Andersen (Primary On-Call, level 1)",
    ]
    assert (api.last.method, api.last.path) == ("GET", f"/incidents/{INC}")


def test_show_after_ack_update_and_a_day_change(run: Run, api: FakeApi) -> None:
    assert run("ack", INC.lower(), "--by", "alice").exit_code == 0
    state = api.incidents[INC]
    state.responders.append("bob")
    state.timeline.append(
        TimelineEntry(
            at=T0 + timedelta(hours=22),
            kind="update",
            text="Rolled back 2026.03.02-1\nLatency back to 300ms",
            by="alice",
        )
    )
    result = run("show", INC)
    assert lines(result) == [
        "INC-2026-03-03-001  P1  Investigating  api",
        "summary          API p99 latency above 5s",
        "assignee         alice",
        "opened           02:14:07 UTC (5m ago)",
        "acknowledged     02:18:07 UTC (1m ago) by alice",
        "next escalation  update reminder at 02:48:07 UTC (in 29m)",
        "responders       bob",
        "",
        "Timeline, 2026-03-03 (UTC)",
        "02:14:07  Alert triggered: API p99 latency above 5s (cli)",
        "02:14:08  Paged Alice Andersen (Primary On-Call, level 1)",
        "02:18:07  Incident acknowledged (alice)",
        "-- 2026-03-04 --",
        "00:14:07  Rolled back 2026.03.02-1",
        "          Latency back to 300ms (alice)",
    ]


def test_control_characters_never_reach_the_terminal(run: Run, api: FakeApi) -> None:
    state = api.incidents[INC]
    state.timeline.append(
        TimelineEntry(at=T0 + timedelta(minutes=1), kind="alert", text="\x1b[2Jcleared\x07")
    )
    result = run("show", INC)
    assert lines(result)[-1] == "02:15:07  ?[2Jcleared?"
    api.respond("GET", "/oncall", 409, {"detail": "bad \x1b]0;title\x07 person"})
    assert error(run("oncall")) == "firewatch: bad ?]0;title? person (HTTP 409)"


def test_show_resolved_incident(run: Run, api: FakeApi) -> None:
    run("resolve", INC, "--root-cause", "Bad deploy", "--fix", "Rollback", "--by", "alice")
    result = run("show", INC)
    assert lines(result)[:8] == [
        "INC-2026-03-03-001  P1  Resolved  api",
        "summary          API p99 latency above 5s",
        "assignee         unassigned",
        "opened           02:14:07 UTC (5m ago)",
        "acknowledged     no",
        "resolved         02:18:07 UTC (1m ago) by alice",
        "root cause       Bad deploy",
        "fix              Rollback",
    ]


def test_show_404_and_bad_id(run: Run, api: FakeApi) -> None:
    result = run("show", "INC-2026-03-03-009")
    assert result.exit_code == 1
    assert error(result) == "firewatch: no incident INC-2026-03-03-009 (HTTP 404)"
    result = run("show", "INC-42")
    assert result.exit_code == 2
    assert error(result) == "firewatch: 'INC-42' is not an incident id (INC-YYYY-MM-DD-###)"
    assert len(api.requests) == 1


def test_show_json_is_the_api_state(run: Run, api: FakeApi) -> None:
    result = run("show", INC, "--json")
    assert json.loads(result.stdout) == incident_state().model_dump(mode="json")


# ---- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path", "body", "printed"),
    [
        (
            ["ack", INC, "--by", "alice"],
            "acknowledge",
            {"by": "alice"},
            [
                f"Acknowledged {INC} · P1 · Investigating · assignee alice",
                "Next step: update reminder at 02:48:07 UTC (in 29m)",
            ],
        ),
        (
            ["update", INC, "--status", "mitigating", "--message", "Rolling back", "--by", "alice"],
            "updates",
            {"by": "alice", "message": "Rolling back", "status": "Mitigating"},
            [
                f"Posted update to {INC} · P1 · Mitigating · unassigned",
                "Next step: page Secondary On-Call at 02:29:07 UTC (in 10m)",
            ],
        ),
        (
            ["update", INC, "--message", "Still looking", "--by", "alice"],
            "updates",
            {"by": "alice", "message": "Still looking"},
            [
                f"Posted update to {INC} · P1 · Triggered · unassigned",
                "Next step: page Secondary On-Call at 02:29:07 UTC (in 10m)",
            ],
        ),
        (
            ["severity", INC, "p0", "--by", "alice"],
            "severity",
            {"by": "alice", "severity": "P0"},
            [
                f"Changed severity of {INC} · P0 · Triggered · unassigned",
                "Next step: page Secondary On-Call at 02:29:07 UTC (in 10m)",
            ],
        ),
        (
            ["escalate", INC, "--by", "bob", "--reason", "alice unreachable"],
            "escalate",
            {"by": "bob", "reason": "alice unreachable"},
            [
                f"Escalated {INC} · P1 · Triggered · unassigned",
                "Next step: page Team Lead at 02:48:07 UTC (in 29m)",
            ],
        ),
        (
            ["responder", INC, "bob", "--by", "alice"],
            "responders",
            {"person": "bob", "by": "alice"},
            [
                f"Added bob to {INC} · P1 · Triggered · unassigned",
                "Next step: page Secondary On-Call at 02:29:07 UTC (in 10m)",
            ],
        ),
        (
            ["resolve", INC, "--root-cause", "Bad deploy", "--fix", "Rollback", "--by", "alice"],
            "resolve",
            {"by": "alice", "root_cause": "Bad deploy", "fix": "Rollback", "false_positive": False},
            [f"Resolved {INC} · P1 · Resolved · unassigned"],
        ),
        (
            [
                *("resolve", INC, "--root-cause", "Flappy probe", "--fix", "None needed"),
                *("--by", "alice", "--false-positive"),
            ],
            "resolve",
            {
                "by": "alice",
                "root_cause": "Flappy probe",
                "fix": "None needed",
                "false_positive": True,
            },
            [f"Resolved {INC} · P1 · Resolved · unassigned"],
        ),
        (
            ["postmortem-held", INC, "--by", "erin", "--notes", "3 action items"],
            "postmortem/held",
            {"by": "erin", "notes": "3 action items"},
            [f"Post-mortem review of {INC} marked held by erin"],
        ),
    ],
)
def test_action_sends_the_contract_request_and_prints_the_outcome(
    run: Run,
    api: FakeApi,
    args: list[str],
    path: str,
    body: dict[str, Any],
    printed: list[str],
) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert lines(result) == printed
    assert len(api.requests) == 1
    req = api.last
    assert (req.method, req.path, req.query) == ("POST", f"/incidents/{INC}/{path}", {})
    assert req.body == body
    assert req.headers["authorization"] == f"Bearer {TOKEN}"


def test_by_defaults_to_firewatch_user(run: Run, api: FakeApi) -> None:
    result = run("ack", INC, env={"FIREWATCH_USER": "alice"})
    assert result.exit_code == 0
    assert api.last.body == {"by": "alice"}


def test_action_json_prints_the_new_state(run: Run, api: FakeApi) -> None:
    result = run("ack", INC, "--by", "alice", "--json")
    state = IncidentState.model_validate(json.loads(result.stdout))
    assert (state.status, state.acknowledged_by) == (Status.INVESTIGATING, "alice")


def test_409_reason_is_printed(run: Run, api: FakeApi) -> None:
    run("resolve", INC, "--root-cause", "Bad deploy", "--fix", "Rollback", "--by", "alice")
    result = run("ack", INC, "--by", "alice")
    assert result.exit_code == 1
    assert error(result) == f"firewatch: {INC} is already resolved (HTTP 409)"


def test_409_unknown_person(run: Run, api: FakeApi) -> None:
    result = run("escalate", INC, "--by", "mallory")
    assert error(result) == "firewatch: unknown person 'mallory' (HTTP 409)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["update", INC, "--status", "Resolved", "--message", "x", "--by", "alice"],
            "firewatch: status must be one of Investigating, Mitigating, not 'Resolved'",
        ),
        (
            ["severity", INC, "P4", "--by", "alice"],
            "firewatch: severity must be one of P0, P1, P2, P3, not 'P4'",
        ),
        (["ack", INC, "--by", "  "], "firewatch: --by must not be empty"),
        (
            ["update", INC, "--message", "", "--by", "alice"],
            "firewatch: --message must not be empty",
        ),
        (
            ["ack", INC],
            "firewatch: Missing option '--by' (env var: 'FIREWATCH_USER') "
            "(see 'firewatch ack --help')",
        ),
        (
            ["escalate", INC],
            "firewatch: Missing option '--by' (env var: 'FIREWATCH_USER') "
            "(see 'firewatch escalate --help')",
        ),
        (
            ["responder", INC, "erin"],
            "firewatch: Missing option '--by' (env var: 'FIREWATCH_USER') "
            "(see 'firewatch responder --help')",
        ),
        (
            ["outbox", "--limit", "0"],
            "firewatch: Invalid value for '--limit': Input should be greater than or equal to 1 "
            "(see 'firewatch outbox --help')",
        ),
        (["frobnicate"], "firewatch: No such command 'frobnicate' (see 'firewatch --help')"),
    ],
)
def test_user_mistakes_are_one_line_and_send_nothing(
    run: Run, api: FakeApi, args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert error(result) == message
    assert api.requests == []


# ---- failures of the API ------------------------------------------------------------------


def test_503_mentions_retry_after(run: Run, api: FakeApi) -> None:
    api.respond(
        "POST",
        f"/incidents/{INC}/acknowledge",
        503,
        {"detail": "Temporal is unavailable"},
        {"Retry-After": "5"},
    )
    result = run("ack", INC, "--by", "alice")
    assert result.exit_code == 1
    assert error(result) == "firewatch: Temporal is unavailable (HTTP 503); retry in 5s"


def test_error_without_json_body(run: Run, api: FakeApi) -> None:
    api.respond("GET", "/oncall", 502, b"<html><body>\n<h1>502 Bad Gateway</h1>\n</body></html>")
    result = run("oncall")
    assert error(result) == (
        "firewatch: <html><body> <h1>502 Bad Gateway</h1> </body></html> (HTTP 502)"
    )


def test_401_hints_where_the_token_comes_from(run: Run, api: FakeApi, tmp_path: Path) -> None:
    result = run("incidents", env={"FIREWATCH_API_TOKEN": "wrong"})
    assert result.exit_code == 1
    assert error(result) == (
        "firewatch: missing or invalid API token (HTTP 401): set FIREWATCH_API_TOKEN "
        "or check the API token (`firewatch token` prints the one in Firewatch's database)"
    )
    assert api.last.headers["authorization"] == "Bearer wrong"


def test_token_from_secrets_json(run: Run, api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"api_token": TOKEN, "other": "x"}))
    result = run("incidents", "--json", env={"FIREWATCH_API_TOKEN": None})
    assert result.exit_code == 0
    assert api.last.headers["authorization"] == f"Bearer {TOKEN}"


def test_token_from_the_database(run: Run, api: FakeApi, tmp_path: Path) -> None:
    # An install's secrets.json, imported into the database at its next start.
    (tmp_path / "secrets.json").write_text(json.dumps({"api_token": TOKEN}))
    assert ensure_secrets(tmp_path, load_default_policy()).api_token == TOKEN
    assert not (tmp_path / "secrets.json").exists()
    result = run("incidents", "--json", env={"FIREWATCH_API_TOKEN": None})
    assert result.exit_code == 0, result.output
    assert api.last.headers["authorization"] == f"Bearer {TOKEN}"
    # A stale file beside the database: the database's token wins.
    (tmp_path / "secrets.json").write_text(json.dumps({"api_token": "stale"}))
    again = run("incidents", "--json", env={"FIREWATCH_API_TOKEN": None})
    assert again.exit_code == 0, again.output
    assert api.last.headers["authorization"] == f"Bearer {TOKEN}"


def test_token_prints_the_token_for_curl(tmp_path: Path) -> None:
    runner = CliRunner()
    env: dict[str, str | None] = {"FIREWATCH_DATA_DIR": str(tmp_path), "FIREWATCH_API_TOKEN": None}
    missing = runner.invoke(cli.app, ["token"], env=env)
    assert missing.exit_code == 2
    assert missing.stderr == (
        f"firewatch: no API token: start Firewatch once (`make up`) in this data dir"
        f" ({tmp_path}), or set FIREWATCH_API_TOKEN\n"
    )
    generated = ensure_secrets(tmp_path, load_default_policy()).api_token
    printed = runner.invoke(cli.app, ["token"], env=env)
    assert (printed.exit_code, printed.stdout) == (0, f"{generated}\n")
    shared = runner.invoke(cli.app, ["token"], env={**env, "FIREWATCH_API_TOKEN": "team-token"})
    assert shared.stdout == "team-token\n"


def test_no_token_anywhere_sends_no_auth_header(run: Run, api: FakeApi) -> None:
    result = run("oncall", env={"FIREWATCH_API_TOKEN": None})
    assert result.exit_code == 1
    assert "authorization" not in api.last.headers


def test_broken_secrets_json(run: Run, api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text("{not json")
    result = run("oncall", env={"FIREWATCH_API_TOKEN": None})
    assert result.exit_code == 2
    assert error(result) == (
        f"firewatch: cannot read the API token: {tmp_path}/secrets.json is not valid JSON"
    )
    assert api.requests == []


def test_connection_refused(run: Run, api: FakeApi) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("ack", INC, "--by", "alice", env={"FIREWATCH_API_URL": url})
    assert result.exit_code == 3
    assert error(result) == (
        f"firewatch: cannot reach the Firewatch API at {url}: is `make up` running?"
    )


def test_api_option_before_or_after_the_command(run: Run, api: FakeApi) -> None:
    env: dict[str, str | None] = {"FIREWATCH_API_URL": "http://127.0.0.1:1"}
    assert run("--api", api.url, "oncall", env=env).exit_code == 0
    assert run("oncall", "--api", api.url + "/", env=env).exit_code == 0
    assert len(api.requests) == 2
    result = run("oncall", "--api", "localhost:8000")
    assert error(result) == (
        "firewatch: invalid API URL 'localhost:8000': expected http://HOST:PORT"
    )


# ---- shapes the API may also use (bare lists, inline people, "errors", 202) ---------------


def test_trigger_that_joins_an_open_incident_says_so(run: Run, api: FakeApi) -> None:
    joined = incident_state().model_copy(update={"alert_count": 4})
    api.respond("POST", "/incidents", 200, joined.model_dump(mode="json"))
    result = run(
        "trigger",
        *("--service", "database", "--severity", "P0", "--summary", "again"),
        *("--dedup-key", "api-latency"),
    )
    assert (result.exit_code, lines(result)) == (0, [INC])  # stdout stays the id alone
    assert result.stderr == (
        f"firewatch: joined the open incident {INC} (P1 on api, 4 alerts): it keeps its"
        f" severity and service (to make it P0: firewatch severity {INC} P0 --by NAME)\n"
    )


def test_trigger_pending_without_a_worker(run: Run, api: FakeApi) -> None:
    pending = {
        "status": "pending",
        "workflow_id": "incident/direct/api-latency",
        "dedup_key": "api-latency",
        "detail": "recorded; waiting for a worker to open it",
    }
    api.respond("POST", "/incidents", 202, pending)
    result = run("trigger", "--service", "api", "--severity", "P1", "--summary", "API slow")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        "firewatch: recorded as incident/direct/api-latency, but no worker has opened it yet: "
        "is the worker running?\n"
    )


def test_bare_list_answers_are_accepted(run: Run, api: FakeApi) -> None:
    rows = api.handle(_get("/incidents"))[1]["incidents"]
    api.respond("GET", "/incidents", 200, rows[:1])
    assert lines(run("incidents"))[1].startswith(f"{INC}  P1   Triggered")
    outbox = api.handle(_get("/outbox"))[1]["notifications"]
    api.respond("GET", "/outbox", 200, outbox[:1])
    assert lines(run("outbox"))[1].startswith("2026-03-03 02:14:08  INC-2026-03-03-001  page")


def test_oncall_with_people_inline(run: Run, api: FakeApi) -> None:
    inline = {
        "at": NOW.isoformat(),
        "team": "MadPlan",
        "roles": [
            {"role": "primary", "title": "Primary On-Call", **person("alice")},
            {"role": "team_lead", "title": "Team Lead", "name": "erin", "display_name": None},
        ],
    }
    api.respond("GET", "/oncall", 200, inline)
    assert lines(run("oncall")) == [
        "On call at 2026-03-03 02:19:07 UTC",
        "LEVEL            PERSON",
        "Primary On-Call  Alice Andersen (alice)",
        "Team Lead        erin",
    ]


def test_422_with_an_errors_list(run: Run, api: FakeApi) -> None:
    body = {
        "detail": "invalid request",
        "errors": [{"loc": "message", "msg": "String should have at least 1 character"}],
    }
    api.respond("POST", f"/incidents/{INC}/updates", 422, body)
    result = run("update", INC, "--message", "x", "--by", "alice")
    assert error(result) == (
        "firewatch: invalid request: message: String should have at least 1 character (HTTP 422)"
    )


def _get(path: str) -> Recorded:
    return Recorded("GET", path, {}, {"authorization": f"Bearer {TOKEN}"}, None)


# ---- on call, outbox, integrations --------------------------------------------------------


def test_oncall(run: Run, api: FakeApi) -> None:
    result = run("oncall")
    assert lines(result) == [
        "On call at 2026-03-03 02:19:07 UTC (Mon 2 Mar 21:19 EST, the team's time)",
        "LEVEL                PERSON",
        "Primary On-Call      Alice Andersen (alice)",
        "Secondary On-Call    Bob Berg (bob)",
        "Team Lead            Erin Eriksen (erin)",
        "Engineering Manager  Frank Foss (frank)",
    ]
    assert (api.last.method, api.last.path) == ("GET", "/oncall")
    data = json.loads(run("oncall", "--json").stdout)
    assert data["roles"][0]["phone"] == "+15550100001"
    assert data["roles"][0]["contact_order"] == ["sms", "slack", "email"]


def test_outbox(run: Run, api: FakeApi) -> None:
    result = run("outbox")
    assert lines(result) == [
        "TIME (UTC)           INCIDENT            KIND              TO                  SUBJECT",
        "2026-03-03 02:14:08  INC-2026-03-03-001  page              alice (sms)         "
        "[P1] INC-2026-03-03-001 api: API p99 latency above 5s",
        "2026-03-03 02:14:09  INC-2026-03-03-001  incident_channel  #incidents (slack)  "
        "Incident Alert - P1 INC-2026-03-03-001",
    ]
    assert api.last.query == {}


def test_outbox_for_one_incident_full(run: Run, api: FakeApi) -> None:
    result = run("outbox", "--incident", INC, "--limit", "1", "--full")
    assert api.last.query == {"incident_id": INC, "limit": "1"}
    assert lines(result) == [
        "TIME (UTC)           KIND              TO                  SUBJECT",
        "2026-03-03 02:14:09  incident_channel  #incidents (slack)  "
        "Incident Alert - P1 INC-2026-03-03-001",
        "    Incident Alert - P1 INC-2026-03-03-001",
        "    Service: api",
        f"    Ack: firewatch ack {INC} --by #incidents",
        "",
    ]


def test_outbox_empty_and_json(run: Run, api: FakeApi) -> None:
    assert lines(run("outbox", "--incident", "INC-2026-01-01-001")) == ["no notifications"]
    data = json.loads(run("outbox", "--json").stdout)
    assert [n["kind"] for n in data["notifications"]] == ["page", "incident_channel"]


def test_integrations_masked_and_shown(run: Run, api: FakeApi) -> None:
    result = run("integrations")
    assert api.last.query == {"show_secrets": "false"}
    assert lines(result) == [
        "NAME         KIND          SERVICE  URL"
        "                                                    KEY",
        "prod-alerts  alertmanager  api      "
        "http://127.0.0.1:8000/alerts/alertmanager/prod-alerts  am-k…cdef",
    ]
    result = run("integrations", "--show-secrets", "--json")
    assert api.last.query == {"show_secrets": "true"}
    assert json.loads(result.stdout)["integrations"][0]["key"] == "am-key-0123456789abcdef"


# ---- the client on its own, and the installed entry point ---------------------------------


def test_client_errors_are_typed(api: FakeApi) -> None:
    with FirewatchClient(api.url, TOKEN) as client:
        with pytest.raises(ApiError) as caught:
            client.get_incident("INC-2026-03-03-404")
        assert (caught.value.status, caught.value.detail) == (404, "no incident INC-2026-03-03-404")
        assert client.get_incident(INC)["incident_id"] == INC
    with (
        FirewatchClient(f"http://127.0.0.1:{free_port()}") as client,
        pytest.raises(ApiUnreachable),
    ):
        client.oncall()


def test_client_times_out(api: FakeApi) -> None:
    # A listening socket that never answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with (
            FirewatchClient(url, TOKEN, timeout=0.3) as client,
            pytest.raises(ApiUnreachable) as caught,
        ):
            client.oncall()
    assert str(caught.value) == f"the Firewatch API at {url} did not answer within 0.3s"


def test_format_detail() -> None:
    detail = [
        {"loc": ["body", "severity"], "msg": "Input should be 'P0', 'P1', 'P2' or 'P3'"},
        {"loc": ["query", "limit"], "msg": "Input should be a valid integer"},
        {"loc": ["body"], "msg": "Field required"},
    ]
    assert format_detail(detail) == (
        "severity: Input should be 'P0', 'P1', 'P2' or 'P3'; "
        "limit: Input should be a valid integer; body: Field required"
    )
    assert format_detail("line one\nline two") == "line one line two"
    assert format_detail(None) == "no reason given"


def test_cli_constants_match_the_domain() -> None:
    assert tuple(s.value for s in Severity) == cli.SEVERITIES
    assert tuple(s.value for s in Status) == cli.STATUSES
    assert cli.SORTS == fw.SORTS == get_args(IncidentSort)


def test_installed_entry_point(api: FakeApi, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "FIREWATCH_API_URL": api.url,
        "FIREWATCH_DATA_DIR": str(tmp_path),
    }
    (tmp_path / "secrets.json").write_text(json.dumps({"api_token": TOKEN}))

    def firewatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FIREWATCH), *args], env=env, capture_output=True, text=True, timeout=60
        )

    ok = firewatch("trigger", "--service", "api", "--severity", "P1", "--summary", "API slow")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"{INC}\n", "")
    missing = firewatch("show", "INC-2026-03-03-009")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "firewatch: no incident INC-2026-03-03-009 (HTTP 404)\n"
    env["FIREWATCH_API_URL"] = url = f"http://127.0.0.1:{free_port()}"
    down = firewatch("incidents")
    assert (down.returncode, down.stdout) == (3, "")
    assert down.stderr == (
        f"firewatch: cannot reach the Firewatch API at {url}: is `make up` running?\n"
    )
    bare = firewatch()
    assert bare.returncode == 0 and "trigger" in bare.stdout and bare.stderr == ""
    assert TOKEN not in ok.stdout + missing.stderr + down.stderr + bare.stdout


# ---- the schedule -----------------------------------------------------------------------

SCHEDULE = {  # the shape of GET /schedule (starter.api.schedules.ScheduleView)
    "start": "2026-12-02T15:00:00Z",
    "end": "2026-12-16T15:00:00Z",
    "timezone": "America/New_York",
    "shifts": [
        {
            "role": "primary",
            "title": "Primary On-Call",
            "person": "alice",
            "display_name": "Alice Andersen",
            "start": "2026-12-02T15:00:00Z",
            "end": "2026-12-07T14:00:00Z",
            "override": None,
        },
        {
            "role": "primary",
            "title": "Primary On-Call",
            "person": "dave",
            "display_name": "Dave Dahl",
            "start": "2026-12-07T14:00:00Z",
            "end": "2026-12-14T14:00:00Z",
            "override": 4,
        },
        {
            "role": "primary",
            "title": "Primary On-Call",
            "person": "carol",
            "display_name": "Carol Christensen",
            "start": "2026-12-14T14:00:00Z",
            "end": "2026-12-16T15:00:00Z",
            "override": None,
        },
    ],
}
OVERRIDES = [
    {
        "id": 4,
        "role": "primary",
        "person": "dave",
        "start": "2026-12-07T14:00:00Z",
        "end": "2026-12-14T14:00:00Z",
        "reason": None,
        "swap_id": "a1b2c3",
        "created_by": "bob",
        "created_at": "2026-12-01T10:00:00Z",
    },
    {
        "id": 5,
        "role": "primary",
        "person": "bob",
        "start": "2026-12-21T14:00:00Z",
        "end": "2026-12-28T14:00:00Z",
        "reason": "holiday",
        "swap_id": "a1b2c3",
        "created_by": "bob",
        "created_at": "2026-12-01T10:00:00Z",
    },
]


def test_schedule_prints_shifts_in_team_time(run: Run, api: FakeApi) -> None:
    api.respond("GET", "/schedule", 200, SCHEDULE)
    result = run("schedule", "--weeks", "2", "--role", "primary")
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        "Shifts for the next 2 week(s), America/New_York time:",
        "ROLE             PERSON             FROM                  TO",
        "Primary On-Call  Alice Andersen     Wed 02 Dec 10:00 EST  Mon 07 Dec 09:00 EST",
        "Primary On-Call  Dave Dahl          Mon 07 Dec 09:00 EST  Mon 14 Dec 09:00 EST"
        "  override #4",
        "Primary On-Call  Carol Christensen  Mon 14 Dec 09:00 EST  Wed 16 Dec 10:00 EST",
    ]
    assert api.last.query == {"weeks": "2", "role": "primary"}


def test_swap_prints_both_halves(run: Run, api: FakeApi) -> None:
    api.respond("POST", "/swaps", 201, OVERRIDES)
    api.respond("GET", "/schedule", 200, SCHEDULE)
    result = run(
        "swap", "--role", "primary", "--week", "2026-12-07", "--with", "dave", "--by", "bob"
    )
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        "Swapped:",
        "ID  ROLE     PERSON  FROM                  TO                    BY   NOTE",
        "#4  primary  dave    Mon 07 Dec 09:00 EST  Mon 14 Dec 09:00 EST  bob  swap",
        "#5  primary  bob     Mon 21 Dec 09:00 EST  Mon 28 Dec 09:00 EST  bob  swap: holiday",
    ]
    swap = next(r for r in api.requests if r.path == "/swaps")
    assert swap.body == {"role": "primary", "week": "2026-12-07", "with": "dave", "by": "bob"}
