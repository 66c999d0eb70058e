"""``firewatch whatif --policy proposed.yaml --month 2026-11``: the policy what-if.

The period's incidents are replayed under the proposed policy and under the current one,
by the API (``POST /reports/whatif``) from Firewatch's database; no workflow runs and
nobody is notified. README "Policy what-if" says what each figure means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from starter.cli import ApiOpt, CliError, JsonOpt, _client, _echo_json, _echo_lines, app


@app.command()
def whatif(
    ctx: typer.Context,
    policy: Annotated[
        Path,
        typer.Option("--policy", metavar="FILE", help="The proposed policy file (YAML)"),
    ],
    month: Annotated[
        str | None,
        typer.Option("--month", metavar="YYYY-MM", help="A month of the team's time zone"),
    ] = None,
    quarter: Annotated[
        str | None, typer.Option("--quarter", metavar="YYYYQn", help="A quarter, e.g. 2026Q4")
    ] = None,
    summary_only: Annotated[
        bool, typer.Option("--summary", help="Leave out the incident-by-incident list")
    ] = False,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a month's or quarter's incidents under a proposed policy: who would have been
    paged, pages per person, escalation and response compliance, beside what happened."""
    from domain.policy_file import PolicyError, parse_policy
    from domain.whatif import WhatIfReport
    from domain.whatif_text import render_whatif
    from starter.cli_report import check_period

    check_period(month, quarter)
    try:
        text = policy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {policy}: {exc}") from exc
    try:
        parse_policy(text, str(policy))  # named file and field, before calling the API
    except PolicyError as exc:
        raise CliError(str(exc)) from exc
    params = {"month": month} if month is not None else {"quarter": quarter}
    body = {"policy": text, "source": str(policy)}
    with _client(ctx, api) as client:
        data: Any = client._request("POST", "/reports/whatif", body=body, params=params)
    if as_json:
        _echo_json(data)
        return
    shown = WhatIfReport.model_validate(data)
    _echo_lines(render_whatif(shown, details=not summary_only).splitlines())
