"""Access control: who the caller is, and whether it is over its limits. The access middleware
(`web/middleware/access.py`) asks it about every request on a path that needs credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..errors import Unauthenticated
from ..settings import Settings
from .authentication import Authenticator
from .caller import Caller
from .end_user_tokens import KeySource, SharedSecret, UserTokenVerifier
from .jwks import JwksKeys
from .rate_limits import RateLimits, open_rate_limits
from .service_keys import ServiceKeys


@dataclass(frozen=True)
class AccessControl:
    authenticator: Authenticator
    rate_limits: RateLimits

    async def admit(self, authorization: Sequence[str], address: str) -> Caller:
        """The caller these `Authorization` headers prove, admitted under its limits."""
        try:
            caller = await self.authenticator.caller_for(authorization)
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
        # httpx (with the rich and pygments its CLI pulls in) only once this is configured: a fifth
        # of the start-up of a gateway without it (bench/README.md, measured decisions).
        import httpx

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
