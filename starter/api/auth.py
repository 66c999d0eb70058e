"""Who may call: per-integration secrets for ingest, the API token for the incidents API.

An ingest key selects one integration, from the policy file or added at run time
(``firewatch integrations add``), and with it the service of the incidents it opens.
Every comparison is constant-time (``hmac.compare_digest``) and checks all candidates,
so neither the answer time nor the order of integrations reveals how close a guess was.
Missing credentials get 401, wrong ones 403; either way nothing is started.

A Grafana HMAC signature must cover a fresh timestamp: Grafana signs
``"<unix seconds>:" + body`` when the contact point names a timestamp header, and a
signature over the body alone could be replayed for ever. So a signed request without
a timestamp, or with one more than 5 minutes off, is refused with 401 saying which.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from typing import Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.policy import Integration, IntegrationKind
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import ApiError
from starter.secrets import IntegrationSecret, added_integrations, load_secrets, page_token

# Grafana's docs (and the contact point form's placeholder) name the signature header
# X-Grafana-Alerting-Signature; Grafana's code sets X-Grafana-Alert-Signature when the
# header field is left empty. Accept both. The timestamp header has no default name:
# the one to configure is the first below; the second is accepted as well.
GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
GRAFANA_SIGNATURE_HEADERS = (GRAFANA_SIGNATURE_HEADER, "X-Grafana-Alert-Signature")
GRAFANA_TIMESTAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"
GRAFANA_TIMESTAMP_HEADERS = (GRAFANA_TIMESTAMP_HEADER, "X-Grafana-Alerting-Timestamp")
SIGNATURE_MAX_AGE_S = 300
_UNIX_SECONDS = re.compile(r"^\d{1,12}$")

_api_bearer = HTTPBearer(
    scheme_name="ApiToken",
    auto_error=False,
    description="The API token (generated into Firewatch's database, or FIREWATCH_API_TOKEN)",
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


def known_integrations(
    ctx: ApiContext, *kinds: IntegrationKind
) -> list[tuple[Integration, IntegrationSecret | None]]:
    """Every integration of ``kinds`` with its secret: the policy file's, then those added
    at run time (a name the policy file also defines is the policy file's)."""
    secrets = ctx.secrets()
    found: list[tuple[Integration, IntegrationSecret | None]] = [
        (integration, secrets.for_integration(integration.name))
        for integration in ctx.integrations()
        if not kinds or integration.kind in kinds
    ]
    added = added_integrations(ctx.data_dir).integrations
    if added:
        names = {integration.name for integration in ctx.integrations()}
        found += [
            (a.integration, a.secret)
            for a in added
            if a.integration.name not in names and (not kinds or a.integration.kind in kinds)
        ]
    return found


def match_integration(
    ctx: ApiContext, kinds: tuple[IntegrationKind, ...], presented: str
) -> Integration | None:
    """The integration whose key equals ``presented``, comparing against every candidate."""
    found: Integration | None = None
    for integration, secret in known_integrations(ctx, *kinds):
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


async def require_api_token_or_link(
    request: Request,
    token: str = Query(
        default="",
        max_length=200,
        description="The page's link token (as in the monthly report's Charts link),"
        " instead of the API token",
    ),
    credentials: HTTPAuthorizationCredentials | None = Depends(_api_bearer),
) -> None:
    """Dependency for pages opened from a link (a browser sends no Bearer token): the API
    token, or the token the link carries for this one page."""
    if credentials is not None and credentials.credentials:
        require_api_token(request, credentials)
        return
    if not token:
        raise unauthorized("API token (Authorization: Bearer …) or the link's ?token=")
    # Read now (in a thread), not cached: a rotation revokes the links at once.
    secrets = await asyncio.to_thread(load_secrets, get_ctx(request).data_dir)
    # The path the app routes (behind a proxy prefix, without it), as the link was signed.
    path = request.url.path
    root = str(request.scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :]
    try:
        expected = page_token(secrets, path)
    except ValueError:
        raise forbidden("link token (for this page)") from None
    if not same_secret(token, expected):
        raise forbidden("link token (for this page)")


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


def _grafana_signature_ok(secret: str, body: bytes, signature: str, timestamp: str) -> bool:
    signed = f"{timestamp}:".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.strip().lower().encode(), expected.encode())


def _first_header(request: Request, names: tuple[str, ...]) -> str | None:
    return next((request.headers[name] for name in names if name in request.headers), None)


def _signature_refused(reason: str) -> ApiError:
    return ApiError(
        401, f"Grafana HMAC signature refused: {reason}", headers={"WWW-Authenticate": "Bearer"}
    )


def check_signature_timestamp(timestamp: str | None, now: float) -> str:
    """The signed request's timestamp, if present, Unix seconds, and within 5 minutes."""
    if timestamp is None or not timestamp.strip():
        raise _signature_refused(
            "no timestamp. Set the contact point's HMAC timestamp header to"
            f" {GRAFANA_TIMESTAMP_HEADER}: a signature without one could be replayed for ever"
        )
    timestamp = timestamp.strip()
    if not _UNIX_SECONDS.match(timestamp):
        raise _signature_refused("the timestamp must be Unix seconds, e.g. 1767225600")
    skew = now - int(timestamp)
    if skew > SIGNATURE_MAX_AGE_S:
        raise _signature_refused(
            f"the timestamp is stale ({int(skew)} s old; at most {SIGNATURE_MAX_AGE_S} s)"
        )
    if -skew > SIGNATURE_MAX_AGE_S:
        raise _signature_refused(
            f"the timestamp is {int(-skew)} s in the future (at most {SIGNATURE_MAX_AGE_S} s;"
            " check the clocks)"
        )
    return timestamp


async def grafana_integration(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_webhook_bearer),
) -> Integration:
    """Grafana authenticates with its Bearer token or its HMAC signature (or both).

    A credential that is present must be right: a good token with a bad signature is 403,
    and a signature needs a fresh timestamp (401 otherwise) even next to a good token.
    """
    ctx = get_ctx(request)
    signature = _first_header(request, GRAFANA_SIGNATURE_HEADERS)
    token = credentials.credentials if credentials is not None else ""
    if not signature and not token:
        raise unauthorized("Grafana token (Authorization: Bearer …) or HMAC signature")
    by_token = match_integration(ctx, ("grafana",), token) if token else None
    if token and by_token is None:
        raise forbidden("Grafana integration token")
    if not signature:
        assert by_token is not None
        return by_token
    timestamp = check_signature_timestamp(
        _first_header(request, GRAFANA_TIMESTAMP_HEADERS), time.time()
    )
    body = await request.body()
    by_signature: Integration | None = None
    for integration, secret in known_integrations(ctx, "grafana"):
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
