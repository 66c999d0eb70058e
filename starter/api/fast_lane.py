"""The fast lane: well-formed, authenticated single-alert requests, served without the framework.

In an alert storm every PagerDuty event (and every generic alert) is its own request, and
FastAPI's per-request machinery (route matching over every route, dependency solving,
request objects, a second JSON parse for the routing key) costs as much CPU as the
Temporal call itself, on the same cores as the Temporal server.

The lane parses the body with the endpoint's own pydantic model (straight from bytes),
checks the secret with the endpoint's own check, and calls the endpoint's own handler.
Anything else (malformed or invalid JSON, a missing or wrong secret, a query string, a
body that is not declared as JSON) goes on to FastAPI untouched, which answers with the
documented errors. So the lane accepts only what the documented route accepts, and
answers it the same way; the OpenAPI document still describes both.

It sits inside the admission control (body limit, in-flight limit) and the metrics, so
those see every request whichever way it is served.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.policy import Integration
from starter.api.context import ApiContext
from starter.api.limits import receive_body, replaying, whole_body

# (parsed body, request headers) → the integration whose secret was presented, or None.
Authenticate = Callable[[ApiContext, BaseModel, Mapping[bytes, bytes]], Integration | None]
# → (status, JSON body): the endpoint's own handler, shared with its FastAPI route.
Handle = Callable[[ApiContext, Integration, Any], Awaitable[tuple[int, bytes]]]
# As FastAPI keeps them: a handler may be a plain function or a coroutine function.
ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


@dataclass(frozen=True)
class LaneRoute:
    """One endpoint the lane serves. ``path`` doubles as the metrics' route label."""

    path: str
    model: type[BaseModel]
    authenticate: Authenticate
    handle: Handle


def bearer_token(headers: Mapping[bytes, bytes]) -> str | None:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def json_response(answer: tuple[int, bytes]) -> Response:
    """A handler's answer as the FastAPI route returns it."""
    status, content = answer
    return Response(content, status_code=status, media_type="application/json")


def _is_json(headers: Mapping[bytes, bytes]) -> bool:
    media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return media_type == b"application/json"


class FastLane:
    def __init__(
        self,
        app: ASGIApp,
        ctx: ApiContext,
        routes: list[LaneRoute],
        exception_handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.routes = {route.path: route for route in routes}
        # The app's own handlers: an error in the lane is answered as the route answers it.
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        body = await receive_body(receive)  # the body limit in front has bounded it
        if body is None:
            return  # the client went away
        parsed = _parse(route, body) if _is_json(headers) else None
        integration = route.authenticate(self.ctx, parsed, headers) if parsed is not None else None
        if parsed is None or integration is None:
            # FastAPI explains why, in the documented shape.
            await self.app(scope, replaying(whole_body(body), receive), send)
            return
        scope["route"] = route
        try:
            status, content = await route.handle(self.ctx, integration, parsed)
        except Exception as exc:
            await self._answer_error(scope, receive, send, exc)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        for kind in type(exc).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None:
                answer = handler(Request(scope, receive), exc)
                response = await answer if inspect.isawaitable(answer) else answer
                await response(scope, receive, send)
                return
        raise exc


def _parse(route: LaneRoute, body: bytes) -> BaseModel | None:
    try:
        return route.model.model_validate_json(body)
    except ValidationError:
        return None
