"""``GET /followup``: the weekly follow-up digest as of now (``firewatch followup``).

The same facts and text the ``weekly-followup`` schedule sends to #engineering and the team
lead each week (``activities.followup``), computed on request.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from activities.followup import gather_followup
from domain.followup import FollowUpFacts, render_digest
from starter.api.auth import require_api_token
from starter.api.context import get_ctx
from starter.api.errors import AUTH_RESPONSES, COMMON_RESPONSES

router = APIRouter(
    tags=["post-mortems"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)


class FollowUpView(BaseModel):
    subject: str
    text: str
    facts: FollowUpFacts


@router.get("/followup", response_model=FollowUpView, summary="The weekly follow-up, as of now")
async def followup(request: Request) -> FollowUpView:
    ctx = get_ctx(request)
    facts = await gather_followup(await ctx.client(), ctx.store().database, datetime.now(UTC))
    digest = render_digest(facts, ctx.policy())
    return FollowUpView(subject=digest.subject, text=digest.text, facts=facts)
