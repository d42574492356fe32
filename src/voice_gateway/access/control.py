"""The door: which paths need credentials, who the caller is, and whether it is over its limits.

Pure ASGI middleware. On a path that needs credentials it authenticates the request, counts it
against the rate limits and puts the `Caller` in the request's state for the handlers (see
caller.py); a refusal is answered here (401 or 429 problem+json) before any handler or body is
touched. Every path needs credentials except those in `PUBLIC_PATHS`, so a new route is protected
until someone decides otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import httpx
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import GatewayError, Unauthenticated
from ..settings import Settings
from ..web.problems import problem_response
from .authentication import Authenticator
from .caller import Caller
from .end_user_tokens import KeySource, SharedSecret, UserTokenVerifier
from .jwks import JwksKeys
from .rate_limits import RateLimits, open_rate_limits
from .service_keys import ServiceKeys

# Probes, scrapes and the contract need no credentials; LiveKit signs its webhooks its own way.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/api/voice/webhook"})
# Not __name__: "voice_gateway.access" is the access log's (request_observer.py).
logger = logging.getLogger("voice_gateway.refusals")


@dataclass(frozen=True)
class AccessControl:
    authenticator: Authenticator
    rate_limits: RateLimits

    async def admit(self, headers: Headers, address: str) -> Caller:
        try:
            caller = await self.authenticator.caller_for(headers.getlist("authorization"))
        except Unauthenticated:
            await self.rate_limits.count_refusal(address)
            raise
        await self.rate_limits.admit(caller, address)
        return caller

    async def before_webhook(self, address: str) -> None:
        """429 for an address that has used up its limit on refusals, before a verification (a
        thread under the shared limiter) is spent on its webhook. Nothing is counted here."""
        if not self.authenticator.open:
            await self.rate_limits.check_address(address)

    async def webhook_refused(self, address: str) -> None:
        """A webhook whose signature did not verify counts like a refused credential."""
        if not self.authenticator.open:
            await self.rate_limits.count_refusal(address)


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        access = cast(AccessControl, scope["state"]["access"])
        try:
            caller = await access.admit(request.headers, client_address(scope))
        except GatewayError as exc:
            logger.info("refused %s %s: %s", request.method, scope["path"], exc.detail)
            response = problem_response(request, exc, exc.detail)
            await response(scope, receive, send)
            return
        # A copy: some servers hand every request the same lifespan-state dict.
        scope["state"] = {**scope.get("state", {}), "caller": caller}
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@asynccontextmanager
async def open_access_control(settings: Settings) -> AsyncIterator[AccessControl]:
    """Authentication and rate limits for the app's lifetime (an HTTP client only for a JWKS)."""
    async with _user_tokens(settings) as user_tokens, open_rate_limits(settings) as rate_limits:
        authenticator = Authenticator(ServiceKeys(settings.api_keys), user_tokens)
        yield AccessControl(authenticator, rate_limits)


@asynccontextmanager
async def _user_tokens(settings: Settings) -> AsyncIterator[UserTokenVerifier | None]:
    if settings.jwt_secret is not None:
        yield _verifier(settings, SharedSecret(settings.jwt_secret))
    elif settings.jwt_jwks_url is not None:
        async with httpx.AsyncClient(timeout=settings.jwt_jwks_timeout_s) as client:
            keys = JwksKeys(
                client,
                settings.jwt_jwks_url,
                timeout_s=settings.jwt_jwks_timeout_s,
                refetch_interval_s=settings.jwt_jwks_refetch_interval_s,
            )
            yield _verifier(settings, keys)
    else:
        yield None


def _verifier(settings: Settings, keys: KeySource) -> UserTokenVerifier:
    return UserTokenVerifier(
        keys,
        issuer=settings.jwt_issuer or "",
        audience=settings.jwt_audience or "",
        algorithms=settings.end_user_algorithms,
    )
