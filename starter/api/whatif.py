"""``POST /reports/whatif?month=2026-11`` (or ``?quarter=2026Q4``): the policy what-if.

The body carries a proposed policy file's text; the period's incidents are replayed under
it and under the current policy (``domain.whatif``), from Firewatch's database only. No
workflow runs and nobody is notified. A bad policy is a 422 naming each bad field
(``body.policy.<field>``), as ``firewatch`` names them when it loads a policy file.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from domain.policy import Policy
from domain.policy_file import PolicyError, parse_policy
from domain.whatif import WhatIfReport
from starter.api.auth import require_api_token
from starter.api.context import get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ApiError,
    FieldError,
)
from storage.whatif import build_whatif, period_bounds

router = APIRouter(
    tags=["reports"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)


class WhatIfRequest(BaseModel):
    policy: str = Field(
        min_length=1,
        max_length=500_000,
        description="The proposed policy file's text (YAML; JSON is YAML too)",
    )
    source: str = Field(
        default="proposed policy",
        min_length=1,
        max_length=200,
        description="What to call the policy in errors, e.g. its file name",
    )


def policy_errors(exc: PolicyError) -> list[FieldError]:
    """Each problem ("severities.P1.ladder.0.window: ...") as an error at its field."""
    found = []
    for problem in exc.problems:
        where, sep, why = problem.partition(": ")
        field = where if sep and " " not in where else "(top level)"
        found.append(
            FieldError(loc=f"body.policy.{field}", msg=why if sep else problem, type="policy")
        )
    return found


def _period(month: str | None, quarter: str | None, policy: Policy) -> str:
    if (month is None) == (quarter is None):
        message = "give month=YYYY-MM or quarter=YYYYQn (one of them)"
        raise ApiError(422, message, [FieldError(loc="query.month", msg=message, type="value")])
    field, period = ("month", month) if month is not None else ("quarter", quarter or "")
    try:
        period_bounds(period, policy)
        if field == "month" and "q" in period.lower():
            raise ValueError(f"month must look like 2026-11 (YYYY-MM), got {period!r}")
        if field == "quarter" and "q" not in period.lower():
            raise ValueError(f"quarter must look like 2026Q4 (YYYY, Q, 1-4), got {period!r}")
    except ValueError as exc:
        message = str(exc)
        raise ApiError(
            422, message, [FieldError(loc=f"query.{field}", msg=message, type="value")]
        ) from exc
    return period


@router.post(
    "/reports/whatif",
    response_model=WhatIfReport,
    responses=BODY_RESPONSES,
    summary="Replay a month's or quarter's incidents under a proposed policy (nobody paged)",
)
async def whatif(
    body: WhatIfRequest,
    request: Request,
    month: str | None = None,
    quarter: str | None = None,
) -> WhatIfReport:
    ctx = get_ctx(request)
    actual = ctx.policy()
    period = _period(month, quarter, actual)
    try:
        # In a thread: half a megabyte of YAML takes about a second to read, and this
        # event loop also takes the alerts.
        proposed = await asyncio.to_thread(parse_policy, body.policy, body.source)
    except PolicyError as exc:
        raise ApiError(422, f"invalid policy ({exc.source})", policy_errors(exc)) from exc
    database = ctx.store().database
    now = datetime.now(UTC)
    return await asyncio.to_thread(build_whatif, database, period, actual, proposed, now)
