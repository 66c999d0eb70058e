"""``GET /reports/monthly/{month}`` and ``/reports/quarterly/{quarter}`` (issue 14).

Read from Firewatch's database only: the incident records that touch the period and the
post-mortem follow-through numbers of the period. The figures are ``domain.report``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from activities.reports import build_monthly
from domain.policy import Policy
from domain.report import (
    MonthlyReport,
    QuarterlyReport,
    month_bounds,
    quarter_bounds,
    quarterly_report,
)
from starter.api.auth import require_api_token, require_api_token_or_link
from starter.api.context import get_ctx
from starter.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, ApiError, FieldError
from storage.database import Database
from storage.postmortems import follow_through
from storage.records import IncidentRecords

T = TypeVar("T")

router = APIRouter(
    tags=["reports"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)
# The HTML pages are opened from the report's link in a browser: the link's token will do.
pages = APIRouter(
    tags=["reports"],
    dependencies=[Depends(require_api_token_or_link)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)


def _bad(field: str, exc: ValueError) -> ApiError:
    message = str(exc)
    return ApiError(422, message, [FieldError(loc=f"path.{field}", msg=message, type="value")])


def _quarterly(database: Database, quarter: str, policy: Policy, now: datetime) -> QuarterlyReport:
    start, end = quarter_bounds(quarter, policy)
    records = IncidentRecords(database).overlapping(start, end)
    numbers = follow_through(database, start, end)
    return quarterly_report(records, quarter, policy, numbers, as_of=min(now, end))


def _monthly_html(database: Database, month: str, policy: Policy, now: datetime) -> str:
    from starter.report_html import render_html  # matplotlib: only when a page is asked for

    return render_html(build_monthly(database, month, policy, now))


def _quarterly_html(database: Database, quarter: str, policy: Policy, now: datetime) -> str:
    from starter.report_html import render_html

    return render_html(_quarterly(database, quarter, policy, now))


_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "The page, charts inline"}
}


# Before ``/reports/monthly/{month}``, which would take ``2026-11.html`` for a month.
@pages.get(
    "/reports/monthly/{month}.html",
    # Response, not HTMLResponse: the errors stay documented as JSON, the page as HTML.
    response_class=Response,
    responses=_PAGE,
    summary="The month's report as an HTML page with charts",
)
async def monthly_html(month: str, request: Request) -> Response:
    page = await _report(request, "month", month, month_bounds, _monthly_html)
    return Response(content=page, media_type="text/html; charset=utf-8")


@router.get(
    "/reports/monthly/{month}",
    response_model=MonthlyReport,
    summary="Incident and on-call figures of a month (YYYY-MM, the team's time zone)",
)
async def monthly(month: str, request: Request) -> MonthlyReport:
    return await _report(request, "month", month, month_bounds, build_monthly)


# Before ``/reports/quarterly/{quarter}``, as for the month.
@pages.get(
    "/reports/quarterly/{quarter}.html",
    response_class=Response,
    responses=_PAGE,
    summary="The quarter's report as an HTML page: charts, and the trend month by month",
)
async def quarterly_html(quarter: str, request: Request) -> Response:
    page = await _report(request, "quarter", quarter, quarter_bounds, _quarterly_html)
    return Response(content=page, media_type="text/html; charset=utf-8")


@router.get(
    "/reports/quarterly/{quarter}",
    response_model=QuarterlyReport,
    summary="The same over a quarter (YYYYQn), with the main figures month by month",
)
async def quarterly(quarter: str, request: Request) -> QuarterlyReport:
    return await _report(request, "quarter", quarter, quarter_bounds, _quarterly)


async def _report(
    request: Request,
    field: str,
    period: str,
    bounds: Callable[[str, Policy], object],
    build: Callable[[Database, str, Policy, datetime], T],
) -> T:
    """Check the period (a clear 422 naming ``field``), then build from the database."""
    ctx = get_ctx(request)
    policy = ctx.policy()
    try:
        bounds(period, policy)
    except ValueError as exc:
        raise _bad(field, exc) from exc
    database = ctx.store().database
    return await asyncio.to_thread(build, database, period, policy, datetime.now(UTC))
