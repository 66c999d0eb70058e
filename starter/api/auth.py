"""Who may call: per-integration secrets for ingest, the API token for the incidents API.

Every comparison is constant-time (``hmac.compare_digest``) and checks all candidates,
so neither the answer time nor the order of integrations reveals how close a guess was.
Missing credentials get 401, wrong ones 403; either way nothing is started.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.policy import Integration, IntegrationKind
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import ApiError

# Grafana's default signature header; the timestamp header has no default name, so
# accept the two spellings its docs and provisioning examples use.
GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
GRAFANA_TIMESTAMP_HEADERS = (
    "X-Grafana-Alerting-Signature-Timestamp",
    "X-Grafana-Alerting-Timestamp",
)
SIGNATURE_MAX_AGE_S = 300

_api_bearer = HTTPBearer(
    scheme_name="ApiToken",
    auto_error=False,
    description="The API token (`api_token` in .data/secrets.json, or FIREWATCH_API_TOKEN)",
)
_webhook_bearer = HTTPBearer(
    scheme_name="IntegrationToken",
    auto_error=False,
    description="The integration's token (`firewatch integrations --show-secrets`)",
)


def same_secret(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def unauthorized(what: str) -> ApiError:
    return ApiError(401, f"missing {what}", headers={"WWW-Authenticate": "Bearer"})


def forbidden(what: str) -> ApiError:
    return ApiError(403, f"wrong {what}")


def match_integration(
    ctx: ApiContext, kinds: tuple[IntegrationKind, ...], presented: str
) -> Integration | None:
    """The integration whose key equals ``presented``, comparing against every candidate."""
    secrets = ctx.secrets()
    found: Integration | None = None
    for integration in ctx.integrations(*kinds):
        secret = secrets.for_integration(integration.name)
        if secret is not None and same_secret(presented, secret.key) and found is None:
            found = integration
    return found


def require_api_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_api_bearer),
) -> None:
    """Dependency for the incidents API."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("API token (Authorization: Bearer …)")
    if not same_secret(credentials.credentials, get_ctx(request).secrets().api_token):
        raise forbidden("API token")


def bearer_integration(kind: IntegrationKind) -> Any:
    """Dependency factory: the integration of ``kind`` whose Bearer token was presented."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_webhook_bearer),
    ) -> Integration:
        if credentials is None or not credentials.credentials:
            raise unauthorized(f"{kind} integration token (Authorization: Bearer …)")
        integration = match_integration(get_ctx(request), (kind,), credentials.credentials)
        if integration is None:
            raise forbidden(f"{kind} integration token")
        return integration

    return Depends(dependency)


def _grafana_signature_ok(secret: str, body: bytes, signature: str, timestamp: str | None) -> bool:
    signed = f"{timestamp}:".encode() + body if timestamp else body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.strip().lower().encode(), expected.encode())


async def grafana_integration(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_webhook_bearer),
) -> Integration:
    """Grafana authenticates with its Bearer token or its HMAC signature (or both).

    A credential that is present must be right: a good token with a bad signature is 403.
    """
    ctx = get_ctx(request)
    signature = request.headers.get(GRAFANA_SIGNATURE_HEADER)
    token = credentials.credentials if credentials is not None else ""
    if not signature and not token:
        raise unauthorized("Grafana token (Authorization: Bearer …) or HMAC signature")
    by_token = match_integration(ctx, ("grafana",), token) if token else None
    if token and by_token is None:
        raise forbidden("Grafana integration token")
    if not signature:
        assert by_token is not None
        return by_token
    timestamp = next(
        (request.headers[h] for h in GRAFANA_TIMESTAMP_HEADERS if h in request.headers), None
    )
    if timestamp is not None:
        try:
            age = abs(time.time() - float(timestamp))
        except ValueError:
            raise forbidden("Grafana signature timestamp (Unix seconds expected)") from None
        if not math.isfinite(age) or age > SIGNATURE_MAX_AGE_S:
            raise forbidden("Grafana signature: timestamp outside the 5-minute window")
    body = await request.body()
    secrets = ctx.secrets()
    by_signature: Integration | None = None
    for integration in ctx.integrations("grafana"):
        secret = secrets.for_integration(integration.name)
        if secret is None or secret.hmac_secret is None:
            continue
        if (
            _grafana_signature_ok(secret.hmac_secret, body, signature, timestamp)
            and by_signature is None
        ):
            by_signature = integration
    if by_signature is None or (by_token is not None and by_token.name != by_signature.name):
        raise forbidden("Grafana HMAC signature")
    return by_signature
