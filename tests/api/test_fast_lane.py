"""The fast lane serves only well-formed, authenticated requests; everything else reaches the app.

Real ASGI calls through httpx: the lane in front of a small app that says it was reached.
The endpoints behind the lane are covered end to end by the ingest and bad-input tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import httpx
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from domain.policy import Integration
from starter.api.context import ApiContext
from starter.api.errors import ApiError
from starter.api.fast_lane import FastLane, LaneRoute, bearer_token

INTEGRATION = Integration(name="generic", kind="generic", service="checkout")


class Ping(BaseModel):
    name: str


def _authenticate(
    _ctx: ApiContext, body: BaseModel, headers: Mapping[bytes, bytes]
) -> Integration | None:
    return INTEGRATION if bearer_token(headers) == "right" else None


async def _handle(_ctx: ApiContext, integration: Integration, body: Ping) -> tuple[int, bytes]:
    if body.name == "refuse":
        raise ApiError(409, "refused by the handler")
    return 202, f'{{"lane":"{integration.name}:{body.name}"}}'.encode()


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for FastAPI: answers 299 with the body it received."""
    message = await receive()
    response = JSONResponse({"app": message.get("body", b"").decode()}, status_code=299)
    await response(scope, receive, send)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail, "path": request.url.path}, status_code=exc.status)


@pytest.fixture
async def lane() -> Any:
    app = FastLane(
        _app,
        ctx=cast(ApiContext, None),
        routes=[LaneRoute("/ping", Ping, _authenticate, _handle)],
        exception_handlers={ApiError: _on_api_error},
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://lane"
    ) as client:
        yield client


RIGHT = {"Authorization": "Bearer right", "Content-Type": "application/json"}


async def test_a_valid_authenticated_request_is_served_by_the_lane(lane: httpx.AsyncClient) -> None:
    response = await lane.post("/ping", content=b'{"name": "a"}', headers=RIGHT)
    assert response.status_code == 202 and response.json() == {"lane": "generic:a"}
    charset = {**RIGHT, "Content-Type": "application/json; charset=utf-8"}
    response = await lane.post("/ping", content=b'{"name": "b"}', headers=charset)
    assert response.json() == {"lane": "generic:b"}


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/ping", b'{"name": ', RIGHT),  # malformed JSON
        ("/ping", b'{"name": 3}', RIGHT),  # fails the model
        ("/ping", b'{"name": "a"}', {**RIGHT, "Authorization": "Bearer wrong"}),
        ("/ping", b'{"name": "a"}', {"Content-Type": "application/json"}),  # no secret
        ("/ping", b'{"name": "a"}', {**RIGHT, "Content-Type": "text/plain"}),
        ("/ping?x=1", b'{"name": "a"}', RIGHT),  # the app checks query strings
        ("/other", b'{"name": "a"}', RIGHT),
    ],
)
async def test_anything_else_reaches_the_app_with_its_body(
    lane: httpx.AsyncClient, path: str, body: bytes, headers: dict[str, str]
) -> None:
    response = await lane.post(path, content=body, headers=headers)
    assert response.status_code == 299 and response.json() == {"app": body.decode()}


async def test_other_methods_reach_the_app(lane: httpx.AsyncClient) -> None:
    assert (await lane.get("/ping", headers=RIGHT)).status_code == 299


async def test_a_handler_error_is_answered_by_the_apps_exception_handler(
    lane: httpx.AsyncClient,
) -> None:
    response = await lane.post("/ping", content=b'{"name": "refuse"}', headers=RIGHT)
    assert response.status_code == 409
    assert response.json() == {"detail": "refused by the handler", "path": "/ping"}


def test_bearer_token_reads_the_scheme_case_insensitively() -> None:
    assert bearer_token({b"authorization": b"bearer  abc "}) == "abc"
    assert bearer_token({b"authorization": b"Basic abc"}) is None
    assert bearer_token({b"authorization": b"Bearer "}) is None
    assert bearer_token({}) is None
