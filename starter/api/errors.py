"""Uniform error bodies, and how failures map to status codes.

* Bad input: 400 (malformed JSON), 415 (not JSON), 422 (schema), with field path and reason.
* Temporal unreachable or too slow: 503 with Retry-After, so senders retry; nothing was
  accepted, and a retry is harmless because every start/signal is idempotent per incident.
* IncidentNotFound: 404. ActionRejected (invalid transition): 409 {"detail": reason}.

``/v2/enqueue`` and ``/v2/change/enqueue`` answer in PagerDuty's shape instead:
{"status", "message", "errors"}.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from starter.incidents import ActionRejected, IncidentNotFound

log = logging.getLogger(__name__)

PAGERDUTY_PATH = "/v2/enqueue"
PAGERDUTY_CHANGE_PATH = "/v2/change/enqueue"
# Answered in PagerDuty's error shape: its Events API and its Change Events API.
PAGERDUTY_PATHS = (PAGERDUTY_PATH, PAGERDUTY_CHANGE_PATH)

# Temporal answers that mean "not now": the caller should retry later.
_RETRYABLE_RPC = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
}


class FieldError(BaseModel):
    loc: str = Field(description="Field path, e.g. alerts.0.startsAt or query.status")
    msg: str = Field(description="Why the value was refused")
    type: str = Field(description="Machine-readable reason")


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class PagerDutyErrorBody(BaseModel):
    status: str
    message: str
    errors: list[str] = Field(default_factory=list)


class ApiError(Exception):
    """Raised by handlers for an error response with a given status."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


class ServiceUnavailable(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail)


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Pydantic error dicts → field path and reason (never the input: it may be a secret)."""
    out: list[FieldError] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        msg = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if err.get("type") == "json_invalid" and ctx.get("error"):
            msg = f"malformed JSON: {ctx['error']}"
        out.append(FieldError(loc=".".join(loc) or "body", msg=msg, type=str(err.get("type", ""))))
    return out


def validation_error(exc: ValidationError, prefix: tuple[str, ...] = ()) -> ApiError:
    """A pydantic error raised while building something from valid-looking input."""
    errors = [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors()]
    return ApiError(422, "invalid request", field_errors(errors))


def _retry_headers(request: Request) -> dict[str, str]:
    seconds = getattr(getattr(request.app.state, "ctx", None), "settings", None)
    return {"Retry-After": str(getattr(seconds, "retry_after_s", 5))}


def error_response(
    request: Request,
    status: int,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    headers = dict(headers or {})
    if status in (429, 503):
        headers = {**_retry_headers(request), **headers}
    if request.url.path in PAGERDUTY_PATHS:
        body: BaseModel = PagerDutyErrorBody(
            status="throttle event" if status == 429 else "invalid event",
            message=detail,
            errors=[f"{e.loc}: {e.msg}" if e.loc else e.msg for e in errors] or [detail],
        )
    else:
        body = ErrorBody(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _is_connect_failure(exc: BaseException) -> bool:
    # A lazy client that never reached the server raises RuntimeError("Failed client connect").
    return isinstance(exc, RuntimeError) and "client connect" in str(exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    if any(e.type == "json_invalid" for e in errors):
        return error_response(request, 400, "malformed JSON", errors)
    content_type = request.headers.get("content-type", "")
    body_errors = [e for e in exc.errors() if tuple(e.get("loc", ()))[:1] == ("body",)]
    if body_errors and "json" not in content_type and request.method in ("POST", "PUT", "PATCH"):
        return error_response(
            request, 415, "send the body as JSON (Content-Type: application/json)"
        )
    if request.url.path in PAGERDUTY_PATHS:
        return error_response(request, 400, "Event object is invalid", errors)
    return error_response(request, 422, "invalid request", errors)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.detail, exc.errors, exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own refusals (undecodable body, unknown route, wrong method) in our shape.
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, exc.status_code, str(exc.detail), headers=headers)


async def _on_not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 404, str(exc))


async def _on_rejected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 409, str(exc))


async def _on_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if exc.status in _RETRYABLE_RPC:
        log.warning("Temporal unavailable for %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 503, f"Temporal is unavailable ({exc.status.name}); retry")
    log.error("Temporal refused %s %s: %s", request.method, request.url.path, exc)
    return error_response(request, 502, f"Temporal refused the call ({exc.status.name})")


async def _on_update_timeout(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 503, "no worker answered in time; retry")


async def _on_runtime_error(request: Request, exc: Exception) -> JSONResponse:
    if _is_connect_failure(exc):
        log.warning("Temporal unreachable for %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 503, "Temporal is unreachable; retry")
    raise exc


def _query_params(dependant: Any) -> dict[str, bool]:
    """Declared query parameters (with sub-dependencies') → whether each takes a list."""
    params = {
        field.alias: get_origin(field.field_info.annotation) in (list, set, tuple)
        for field in dependant.query_params
    }
    for sub in dependant.dependencies:
        params |= _query_params(sub)
    return params


async def check_query(request: Request) -> None:
    """App-wide dependency: a misspelt filter (?stauts=) or a repeated single-valued one is
    a 422 naming the parameter, not silently ignored."""
    if not request.scope.get("query_string"):
        return  # the common case (every alert), answered without parsing anything
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    declared = _query_params(dependant)
    errors: list[FieldError] = []
    for name in dict.fromkeys(request.query_params):
        if name not in declared:
            errors.append(
                FieldError(
                    loc=f"query.{name}", msg="Unknown query parameter", type="extra_forbidden"
                )
            )
        elif not declared[name] and len(request.query_params.getlist(name)) > 1:
            errors.append(
                FieldError(loc=f"query.{name}", msg="Given more than once", type="repeated")
            )
    if errors:
        status = 400 if request.url.path in PAGERDUTY_PATHS else 422
        raise ApiError(status, "invalid request", errors)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IncidentNotFound, _on_not_found)
    app.add_exception_handler(ActionRejected, _on_rejected)
    app.add_exception_handler(RPCError, _on_rpc_error)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, _on_update_timeout)
    app.add_exception_handler(RuntimeError, _on_runtime_error)


def _ref(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


# Documented on every operation, so the OpenAPI document lists every status we send.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: _ref(ErrorBody, "Invalid field: path and reason in errors[]"),
    429: _ref(ErrorBody, "Overloaded; retry after Retry-After seconds"),
    503: _ref(ErrorBody, "Temporal unavailable; retry after Retry-After seconds"),
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _ref(ErrorBody, "Malformed JSON"),
    413: _ref(ErrorBody, "Body over 512 KB"),
    415: _ref(ErrorBody, "Body is not JSON"),
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _ref(ErrorBody, "Missing credentials"),
    403: _ref(ErrorBody, "Wrong credentials"),
}
