"""An incident's documents, read from the database: ``GET /incidents/{id}/ticket`` (the
Incident Report) and ``GET /incidents/{id}/postmortem/document`` (the post-mortem draft).

The database holds them whichever worker host wrote them (``storage.documents``); the
files in the data dir are only a mirror on the embedded default, or an export.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict

from starter.api.auth import require_api_token
from starter.api.context import get_ctx
from starter.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, ApiError, ErrorBody
from storage.documents import Documents

router = APIRouter(
    tags=["incidents"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)

IncidentIdPath = Path(
    max_length=64, description="INC-YYYY-MM-DD-###", examples=["INC-2026-01-31-001"]
)


class DocumentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str  # ticket, postmortem
    incident_id: str
    version: int
    updated_at: datetime
    path: str  # where `firewatch export` (and the SQLite mirror) puts it, under the data dir
    markdown: str  # the whole document, as its file holds it


_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such document (yet)"},
}


async def _document(request: Request, kind: str, incident_id: str) -> DocumentInfo:
    ctx = get_ctx(request)
    found = await asyncio.to_thread(Documents(ctx.store().database).get, kind, incident_id)
    if found is None:
        what = "ticket" if kind == "ticket" else "post-mortem draft"
        raise ApiError(404, f"no {what} for {incident_id!r} (yet)")
    return DocumentInfo(
        kind=found.kind,
        incident_id=found.incident_id,
        version=found.version,
        updated_at=found.updated_at,
        path=found.relative_path,
        markdown=found.markdown,
    )


@router.get(
    "/incidents/{incident_id}/ticket",
    response_model=DocumentInfo,
    responses=_MISSING,
    summary="The incident's ticket (Incident Report), as Markdown",
)
async def get_ticket(request: Request, incident_id: str = IncidentIdPath) -> DocumentInfo:
    return await _document(request, "ticket", incident_id)


@router.get(
    "/incidents/{incident_id}/postmortem/document",
    response_model=DocumentInfo,
    responses=_MISSING,
    summary="The incident's post-mortem draft, as Markdown",
)
async def get_postmortem_document(
    request: Request, incident_id: str = IncidentIdPath
) -> DocumentInfo:
    return await _document(request, "postmortem", incident_id)
