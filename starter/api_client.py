"""A small synchronous client for Firewatch's HTTP API (used by the CLI and by tests).

Every method maps to one endpoint and returns the decoded JSON. Failures raise
:class:`ApiError` (the API answered with an error) or :class:`ApiUnreachable` (no
usable answer: refused, timed out, connection dropped), both with one-line messages.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict
from urllib.parse import quote

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0  # trigger waits for the workflow to hand out an incident id

# An incident as the API returns it: ``domain.incident.IncidentState`` in JSON form.
IncidentJson = dict[str, Any]


class IncidentRow(TypedDict):
    incident_id: str | None
    severity: str | None
    status: str | None
    service: str | None
    assignee: str | None
    opened_at: str | None
    workflow_id: str
    summary: str | None


class PersonJson(TypedDict):
    name: str
    display_name: NotRequired[str | None]
    email: NotRequired[str | None]
    phone: NotRequired[str | None]
    slack_user_id: NotRequired[str | None]
    contact_order: NotRequired[list[str]]


class OnCallRole(PersonJson):
    role: str
    title: str
    override: NotRequired[int | None]
    next_handoff_at: NotRequired[str | None]
    next_name: NotRequired[str | None]


class OnCall(TypedDict):
    at: str
    team: str
    roles: list[OnCallRole]


class ShiftJson(TypedDict):
    role: str
    title: str
    person: str
    display_name: str | None
    start: str
    end: str
    override: int | None


class ScheduleJson(TypedDict):
    start: str
    end: str
    timezone: str
    shifts: list[ShiftJson]


class OverrideJson(TypedDict):
    id: int
    role: str
    person: str
    start: str
    end: str
    reason: str | None
    swap_id: str | None
    created_by: str
    created_at: str


class FeedJson(TypedDict):
    name: str
    url: str


class Notification(TypedDict):
    id: int
    idempotency_key: str
    incident_id: str
    kind: str
    recipient: str
    channel: str
    subject: str
    text: str
    scheduled_at: str
    recorded_at: str
    status: str


class IntegrationJson(TypedDict):
    name: str
    kind: str
    service: str
    url: str
    key: str
    auth: NotRequired[str]
    hmac_secret: NotRequired[str | None]
    auto_resolve: NotRequired[bool]
    acknowledge_events: NotRequired[bool]
    default_severity: NotRequired[str | None]
    origin: NotRequired[str]
    masked: NotRequired[bool]


class ChangeLinkJson(TypedDict):
    href: str
    text: NotRequired[str | None]


class ChangeJson(TypedDict):
    """A change in the feed: ``domain.changes.Change`` in JSON form."""

    change_id: str
    service: str
    summary: str
    source: str
    who: str | None
    at: str
    received_at: str
    integration: str | None
    links: list[ChangeLinkJson]
    details: dict[str, Any]


class MaintenanceJson(TypedDict):
    """A maintenance window: ``starter.api.maintenance.MaintenanceView`` in JSON form."""

    id: int
    service: str
    starts_at: str
    ends_at: str
    reason: str
    created_by: str
    created_at: str
    ended_at: str | None
    ended_by: str | None
    phase: str  # scheduled, active, ended


class ApiError(Exception):
    """The API answered with an error status (``status`` 0: no answer at all)."""

    def __init__(self, status: int, detail: str, *, retry_after: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.detail} (HTTP {self.status})"
        if self.retry_after:
            text += f"; retry in {self.retry_after}s"
        return text


class ApiUnreachable(ApiError):
    """No usable HTTP answer: connection refused, timeout, dropped connection."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)

    def __str__(self) -> str:
        return self.detail


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_detail(detail: Any) -> str:
    """FastAPI's ``detail``: a string, or a list of ``{loc, msg}`` validation errors."""
    if isinstance(detail, str):
        return _one_line(detail) or "no reason given"
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(_one_line(str(item)))
                continue
            raw_loc = item.get("loc") or []
            loc = [raw_loc] if isinstance(raw_loc, str) else [str(p) for p in raw_loc]
            # "body"/"query"/"path" only say where the field came from.
            if len(loc) > 1 and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            msg = _one_line(str(item.get("msg", "invalid")))
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        return "; ".join(parts)
    return _one_line(json.dumps(detail)) if detail is not None else "no reason given"


def _error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = format_detail(body["detail"])
        # {"detail": "invalid request", "errors": [{loc, msg}]}: the fields say more.
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            fields = format_detail(errors)
            # The reason may be a field's message itself: say it once, at its field.
            said = {_one_line(str(e.get("msg", ""))) for e in errors if isinstance(e, dict)}
            detail = fields if detail in said else f"{detail}: {fields}"
    else:
        text = _one_line(response.text)[:200]
        detail = text or response.reason_phrase or "error"
    return ApiError(response.status_code, detail, retry_after=response.headers.get("Retry-After"))


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _items(data: Any, key: str) -> Any:
    """The rows of a list answer: ``{key: [...]}``, or a bare list."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ApiError(200, f"unexpected answer from the API: no {key!r} list")
    return data[key]


class FirewatchClient:
    """Talks to one Firewatch API. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url.strip().rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"invalid API URL {base_url!r}: expected http://HOST:PORT")
        self.base_url = str(url)
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "firewatch-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FirewatchClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- transport ----------------------------------------------------------------------

    def _request(
        self,
        method: Literal["GET", "POST", "DELETE"],
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        return self._answer(method, path, body=body, params=params)[1]

    def _answer(
        self,
        method: Literal["GET", "POST", "DELETE"],
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """The status and decoded JSON of a successful answer."""
        try:
            response = self._http.request(
                method, path, json=body, params=_drop_none(params) if params else None
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiUnreachable(
                f"cannot reach the Firewatch API at {self.base_url}: is `make up` running?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(
                f"the Firewatch API at {self.base_url} did not answer within {self.timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            reason = _one_line(str(exc)) or type(exc).__name__
            raise ApiUnreachable(
                f"lost the connection to the Firewatch API at {self.base_url}: {reason}"
            ) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code, "the API answered with something not JSON"
            ) from exc

    def _incident(self, incident_id: str, action: str = "") -> str:
        path = f"/incidents/{quote(incident_id, safe='')}"
        return f"{path}/{action}" if action else path

    # ---- incidents ----------------------------------------------------------------------

    def trigger(
        self, service: str, severity: str, summary: str, dedup_key: str | None = None
    ) -> IncidentJson:
        """The new (or joined) incident; a ``{"status": "pending", "workflow_id", ...}`` body
        when the alert was recorded but no worker has given it an id yet (202)."""
        body = _drop_none(
            {"service": service, "severity": severity, "summary": summary, "dedup_key": dedup_key}
        )
        result: IncidentJson = self._request("POST", "/incidents", body=body)
        return result

    def list_incidents(
        self,
        *,
        status: str | None = None,
        severity: str | None = None,
        service: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[IncidentRow]:
        """Newest first unless ``sort`` says otherwise (-opened, opened, severity, status)."""
        params = {
            "status": status,
            "severity": severity,
            "service": service,
            "sort": sort,
            "limit": limit,
        }
        rows: list[IncidentRow] = _items(
            self._request("GET", "/incidents", params=params), "incidents"
        )
        return rows

    def get_incident(self, incident_id: str) -> IncidentJson:
        result: IncidentJson = self._request("GET", self._incident(incident_id))
        return result

    def document(self, incident_id: str, kind: str = "ticket") -> dict[str, Any]:
        """The ticket (or ``postmortem`` draft) as the database holds it, with its Markdown."""
        action = "ticket" if kind == "ticket" else "postmortem/document"
        result: dict[str, Any] = self._request("GET", self._incident(incident_id, action))
        return result

    def _act(self, incident_id: str, action: str, body: dict[str, Any]) -> IncidentJson:
        result: IncidentJson = self._request("POST", self._incident(incident_id, action), body=body)
        return result

    def acknowledge(self, incident_id: str, by: str) -> IncidentJson:
        return self._act(incident_id, "acknowledge", {"by": by})

    def post_update(
        self,
        incident_id: str,
        by: str,
        message: str,
        status: str | None = None,
        *,
        next_steps: str | None = None,
        eta: str | None = None,
    ) -> IncidentJson:
        """The Update template: progress (``message``), next steps and ETA."""
        body = _drop_none(
            {"by": by, "message": message, "status": status, "next_steps": next_steps, "eta": eta}
        )
        return self._act(incident_id, "updates", body)

    def edit_ticket(self, incident_id: str, by: str, fields: dict[str, Any]) -> IncidentJson:
        """Set the ticket fields given (the others stay as they are)."""
        return self._act(incident_id, "ticket", {**_drop_none(fields), "by": by})

    def change_severity(self, incident_id: str, by: str, severity: str) -> IncidentJson:
        return self._act(incident_id, "severity", {"by": by, "severity": severity})

    def escalate(self, incident_id: str, by: str, reason: str | None = None) -> IncidentJson:
        return self._act(incident_id, "escalate", _drop_none({"by": by, "reason": reason}))

    def add_responder(self, incident_id: str, person: str, by: str) -> IncidentJson:
        return self._act(incident_id, "responders", {"person": person, "by": by})

    def resolve(
        self, incident_id: str, by: str, root_cause: str, fix: str, false_positive: bool = False
    ) -> IncidentJson:
        body = {"by": by, "root_cause": root_cause, "fix": fix, "false_positive": false_positive}
        return self._act(incident_id, "resolve", body)

    def run_diagnostics(self, incident_id: str, by: str, check: str | None = None) -> IncidentJson:
        return self._act(incident_id, "runbook", _drop_none({"by": by, "check": check}))

    def propose_mitigation(
        self, incident_id: str, action: str, by: str, reason: str | None = None
    ) -> IncidentJson:
        body = _drop_none({"by": by, "action": action, "reason": reason})
        return self._act(incident_id, "mitigations", body)

    def decide_mitigation(
        self, incident_id: str, number: int, by: str, approve: bool, reason: str | None = None
    ) -> IncidentJson:
        verb = "approve" if approve else "decline"
        body = _drop_none({"by": by, "reason": reason})
        return self._act(incident_id, f"mitigations/{number}/{verb}", body)

    def postmortem_held(self, incident_id: str, by: str, notes: str = "") -> dict[str, Any]:
        return self._act(incident_id, "postmortem/held", {"by": by, "notes": notes})

    # ---- people, notifications, integrations -------------------------------------------

    def oncall(self, at: str | None = None) -> OnCall:
        """``at``: ISO 8601; without an offset, the team's local time."""
        result: OnCall = self._request("GET", "/oncall", params=_drop_none({"at": at}))
        return result

    def schedule(self, weeks: int = 4, role: str | None = None) -> ScheduleJson:
        params = _drop_none({"weeks": weeks, "role": role})
        result: ScheduleJson = self._request("GET", "/schedule", params=params)
        return result

    def overrides(self, role: str | None = None) -> list[OverrideJson]:
        rows: list[OverrideJson] = self._request(
            "GET", "/overrides", params=_drop_none({"role": role})
        )
        return rows

    def add_override(
        self,
        role: str,
        person: str,
        end: str,
        by: str,
        *,
        start: str | None = None,
        reason: str | None = None,
    ) -> list[OverrideJson]:
        body = {"role": role, "person": person, "start": start, "end": end, "reason": reason}
        rows: list[OverrideJson] = self._request(
            "POST", "/overrides", body=_drop_none({**body, "by": by})
        )
        return rows

    def remove_override(self, override_id: int, by: str) -> list[OverrideJson]:
        rows: list[OverrideJson] = self._request(
            "DELETE", f"/overrides/{override_id}", params={"by": by}
        )
        return rows

    def swap(
        self, role: str, week: str, with_person: str, by: str, reason: str | None = None
    ) -> list[OverrideJson]:
        body = {"role": role, "week": week, "with": with_person, "by": by, "reason": reason}
        rows: list[OverrideJson] = self._request("POST", "/swaps", body=_drop_none(body))
        return rows

    def schedule_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._request(
            "GET", "/overrides/audit", params={"limit": limit}
        )
        return rows

    def calendars(self, rotate: bool = False) -> list[FeedJson]:
        if rotate:
            rotated: list[FeedJson] = self._request("POST", "/calendars/rotate")
            return rotated
        rows: list[FeedJson] = self._request("GET", "/calendars")
        return rows

    def outbox(
        self, incident_id: str | None = None, limit: int | None = None
    ) -> list[Notification]:
        params = {"incident_id": incident_id, "limit": limit}
        rows: list[Notification] = _items(
            self._request("GET", "/outbox", params=params), "notifications"
        )
        return rows

    def integrations(self, show_secrets: bool = False) -> list[IntegrationJson]:
        params = {"show_secrets": "true" if show_secrets else "false"}
        rows: list[IntegrationJson] = _items(
            self._request("GET", "/integrations", params=params), "integrations"
        )
        return rows

    def add_integration(
        self,
        kind: str,
        service: str,
        name: str | None = None,
        *,
        default_severity: str | None = None,
        auto_resolve: bool | None = None,
        acknowledge_events: bool | None = None,
    ) -> IntegrationJson:
        """The new integration, with its key (and Grafana's HMAC secret) in full."""
        body = _drop_none(
            {
                "kind": kind,
                "service": service,
                "name": name,
                "default_severity": default_severity,
                "auto_resolve": auto_resolve,
                "acknowledge_events": acknowledge_events,
            }
        )
        result: IntegrationJson = self._request("POST", "/integrations", body=body)
        return result

    def remove_integration(self, name: str) -> IntegrationJson:
        result: IntegrationJson = self._request("DELETE", f"/integrations/{quote(name, safe='')}")
        return result

    # ---- change feed --------------------------------------------------------------------

    def changes(
        self,
        *,
        service: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[ChangeJson]:
        """Newest first. ``since``: an ISO 8601 time with an offset."""
        params = {"service": service, "since": since, "limit": limit}
        rows: list[ChangeJson] = _items(self._request("GET", "/changes", params=params), "changes")
        return rows

    def add_change(
        self,
        service: str,
        summary: str,
        who: str,
        *,
        at: str | None = None,
        links: list[ChangeLinkJson] | None = None,
        change_id: str | None = None,
        details: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> tuple[ChangeJson, bool]:
        """The stored change, and whether it is new (False: ``change_id`` was recorded
        before for this service, and the change is as first stored)."""
        body = _drop_none(
            {
                "service": service,
                "summary": summary,
                "who": who,
                "at": at,
                "links": links,
                "id": change_id,
                "details": details,
                "source": source,
            }
        )
        status, change = self._answer("POST", "/changes", body=body)
        return change, status == 201

    # ---- maintenance windows -------------------------------------------------------------

    def start_maintenance(
        self,
        service: str,
        ends_at: str,
        reason: str,
        by: str,
        *,
        starts_at: str | None = None,
    ) -> MaintenanceJson:
        """A new window (``starts_at`` None: now). Times: ISO 8601 with an offset."""
        body = _drop_none(
            {"service": service, "starts_at": starts_at, "ends_at": ends_at, "reason": reason}
        )
        result: MaintenanceJson = self._request("POST", "/maintenance", body={**body, "by": by})
        return result

    def maintenance(
        self, *, service: str | None = None, include_past: bool = False
    ) -> list[MaintenanceJson]:
        """Windows on or to come (with ``include_past`` also those over), soonest first."""
        params = {"service": service, "all": "true" if include_past else None}
        rows: list[MaintenanceJson] = _items(
            self._request("GET", "/maintenance", params=params), "windows"
        )
        return rows

    def end_maintenance(self, window_id: int, by: str) -> MaintenanceJson:
        result: MaintenanceJson = self._request(
            "POST", f"/maintenance/{int(window_id)}/end", body={"by": by}
        )
        return result

    # ---- post-mortems and action items (starter/api/postmortems.py) ---------------------

    def postmortems(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        params = {"open": "true" if open_only else None}
        rows: list[dict[str, Any]] = _items(
            self._request("GET", "/postmortems", params=params), "postmortems"
        )
        return rows

    def actions(
        self, *, owner: str | None = None, overdue: bool = False, incident_id: str | None = None
    ) -> list[dict[str, Any]]:
        params = {
            "owner": owner,
            "overdue": "true" if overdue else None,
            "incident_id": incident_id,
        }
        rows: list[dict[str, Any]] = _items(
            self._request("GET", "/actions", params=params), "actions"
        )
        return rows

    def postmortem(self, incident_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", self._incident(incident_id, "postmortem"))
        return result

    def postmortem_reschedule(
        self, incident_id: str, by: str, review_at: str, reason: str = ""
    ) -> dict[str, Any]:
        body = {"by": by, "review_at": review_at, "reason": reason}
        return self._act(incident_id, "postmortem/reschedule", body)

    def postmortem_meeting(self, incident_id: str, by: str, **notes: str | None) -> dict[str, Any]:
        return self._act(incident_id, "postmortem/meeting", _drop_none({"by": by, **notes}))

    def postmortem_complete(self, incident_id: str, by: str) -> dict[str, Any]:
        return self._act(incident_id, "postmortem/complete", {"by": by})

    def add_action(
        self, incident_id: str, *, title: str, owner: str, due: str, kind: str, by: str | None
    ) -> dict[str, Any]:
        body = _drop_none({"title": title, "owner": owner, "due": due, "kind": kind, "by": by})
        return self._act(incident_id, "actions", body)

    def edit_action(self, incident_id: str, number: int, by: str, **changes: str | None) -> Any:
        body = _drop_none({"by": by, **changes})
        return self._act(incident_id, f"actions/{int(number)}/edit", body)

    def close_action(self, incident_id: str, number: int, by: str, evidence: str) -> Any:
        body = {"by": by, "evidence": evidence}
        return self._act(incident_id, f"actions/{int(number)}/close", body)

    def verify_action(self, incident_id: str, number: int, by: str) -> Any:
        return self._act(incident_id, f"actions/{int(number)}/verify", {"by": by})

    # ---- the weekly handoff (starter/api/handoffs.py) ------------------------------------

    def handoffs(self, *, role: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._request(
            "GET", "/handoffs", params={"role": role, "limit": limit}
        )
        return rows

    def latest_handoff(self, role: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/handoffs/latest", params={"role": role})
        return result

    def handoff_note(self, by: str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "POST", "/handoffs/notes", body={"by": by, "text": text}
        )
        return result

    def test_page(self, person: str, by: str) -> dict[str, Any]:
        path = f"/people/{quote(person, safe='')}/test-page"
        result: dict[str, Any] = self._request("POST", path, body={"by": by})
        return result

    def ack_test(
        self, method: str, by: str, handoff_id: str | None = None, via: str = "cli"
    ) -> dict[str, Any]:
        path = f"/handoffs/{quote(handoff_id or 'latest', safe='/:')}/ack-test"
        result: dict[str, Any] = self._request(
            "POST", path, body={"by": by, "method": method, "via": via}
        )
        return result

    def confirm_contact(
        self, by: str, handoff_id: str | None = None, via: str = "cli"
    ) -> dict[str, Any]:
        path = f"/handoffs/{quote(handoff_id or 'latest', safe='/:')}/confirm"
        result: dict[str, Any] = self._request("POST", path, body={"by": by, "via": via})
        return result

    def followup(self) -> dict[str, Any]:
        """The weekly follow-up digest as of now: ``subject``, ``text`` and ``facts``."""
        data: dict[str, Any] = self._request("GET", "/followup")
        return data

    def monthly_report(self, month: str) -> dict[str, Any]:
        """The incident and on-call figures of ``month`` (``2026-11``)."""
        data: dict[str, Any] = self._request("GET", f"/reports/monthly/{quote(month, safe='')}")
        return data

    def quarterly_report(self, quarter: str) -> dict[str, Any]:
        """The same over ``quarter`` (``2026Q4``), with the main figures month by month."""
        path = f"/reports/quarterly/{quote(quarter, safe='')}"
        data: dict[str, Any] = self._request("GET", path)
        return data
