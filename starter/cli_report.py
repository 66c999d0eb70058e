"""``firewatch report --month 2026-11`` / ``--quarter 2026Q4``: incident and on-call figures.

The figures are the API's (``GET /reports/monthly/{month}``, ``/reports/quarterly/{quarter}``);
README "Metrics and reports" defines each one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from starter.cli import (
    ApiOpt,
    CliError,
    JsonOpt,
    _client,
    _echo_json,
    _echo_lines,
    _team_zone,
    app,
)


@app.command()
def report(
    ctx: typer.Context,
    month: Annotated[
        str | None,
        typer.Option("--month", metavar="YYYY-MM", help="A month of the team's time zone"),
    ] = None,
    quarter: Annotated[
        str | None, typer.Option("--quarter", metavar="YYYYQn", help="A quarter, e.g. 2026Q4")
    ] = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Monthly or quarterly figures: MTTD/MTTA/MTTR, SLA compliance, volume, trends.

    Without --month or --quarter: this month so far, in the team's time zone."""
    from domain.report import MonthlyReport, QuarterlyReport
    from domain.report_text import render_report

    if month is None and quarter is None:
        month = f"{datetime.now(_team_zone(ctx, api)()):%Y-%m}"
    check_period(month, quarter)
    with _client(ctx, api) as client:
        data = client.monthly_report(month) if month else client.quarterly_report(quarter or "")
    if as_json:
        _echo_json(data)
        return
    shown = MonthlyReport.model_validate(data) if month else QuarterlyReport.model_validate(data)
    _echo_lines(render_report(shown).splitlines())


def check_period(month: str | None, quarter: str | None) -> None:
    """Exactly one of ``--month YYYY-MM`` and ``--quarter YYYYQn``, well formed."""
    from domain.report import parse_month, parse_quarter

    if (month is None) == (quarter is None):
        raise CliError("give --month YYYY-MM or --quarter YYYYQn (one of them)")
    try:
        if month is not None:
            parse_month(month)
        else:
            parse_quarter(quarter or "")
    except ValueError as exc:
        raise CliError(str(exc)) from exc
