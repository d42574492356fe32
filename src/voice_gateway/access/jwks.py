"""The identity provider's signing keys, from its JWKS URL.

Fetched with the lifespan's `httpx.AsyncClient` (never a synchronous client on the loop), cached,
and fetched again when a token names a `kid` the cache does not hold (the IdP rotated its keys) or
the cache is older than `CACHE_TTL_S`. Fetches are serialised and at most one starts per refetch
interval, so a flood of made-up `kid`s costs the IdP one request per interval, not one per token.
When the IdP is down, the keys already held keep working.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import jwt

from ..errors import IdentityProviderUnavailable
from .end_user_tokens import InvalidUserToken

if TYPE_CHECKING:
    import httpx

CACHE_TTL_S = 600.0
logger = logging.getLogger("voice_gateway.jwks")  # pinned: logs know it by this name
Jwk = dict[str, Any]


class JwksKeys:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        timeout_s: float,
        refetch_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = url
        self._timeout_s = timeout_s
        self._refetch_interval_s = refetch_interval_s
        self._clock = clock
        self._keys: dict[str, Jwk] = {}
        self._parsed: dict[tuple[str, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = anyio.Lock()

    async def key_for(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        found = self._find(kid)
        if found is None or self._stale():
            await self._refetch()
            found = self._find(kid)
        if found is None:
            if not self._keys:
                raise IdentityProviderUnavailable("The identity provider's keys could not be read")
            raise InvalidUserToken("the user token is signed with a key the issuer does not list")
        return self._parsed_key(*found, algorithm)

    def _find(self, kid: str | None) -> tuple[str, Jwk] | None:
        if kid is None and len(self._keys) == 1:  # some IdPs omit kid when they have one key
            return next(iter(self._keys.items()))
        return (kid, self._keys[kid]) if kid in self._keys else None

    def _stale(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at > CACHE_TTL_S

    async def _refetch(self) -> None:
        async with self._lock:
            now = self._clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self._refetch_interval_s
            ):
                return  # fetched (or tried) moments ago, maybe while this request waited
            self._attempted_at = now
            try:
                self._keys = await self._download()
            except IdentityProviderUnavailable as exc:
                logger.warning("%s; keeping %d cached keys", exc.detail, len(self._keys))
                return
            self._parsed.clear()
            self._fetched_at = now

    async def _download(self) -> dict[str, Jwk]:
        return await download_jwks(self._client, self._url, self._timeout_s)

    def _parsed_key(self, kid: str, jwk: Jwk, algorithm: str) -> jwt.PyJWK:
        if jwk.get("alg") not in (None, algorithm):
            raise InvalidUserToken("the user token's algorithm does not match its key")
        cached = self._parsed.get((kid, algorithm))
        if cached is None:
            try:
                cached = jwt.PyJWK(jwk, algorithm=algorithm)
            except jwt.PyJWTError:  # its message may quote the key: never pass it on
                raise InvalidUserToken("the user token's algorithm does not fit its key") from None
            self._parsed[(kid, algorithm)] = cached
        return cached


async def download_jwks(client: httpx.AsyncClient, url: str, timeout_s: float) -> dict[str, Jwk]:
    """The signing keys a JWKS URL lists, by kid; IdentityProviderUnavailable when it cannot."""
    import httpx  # imported once a JWKS is configured (access/control.py)

    try:
        with anyio.fail_after(timeout_s):
            response = await client.get(url)
        response.raise_for_status()
        document = response.json()
    # RecursionError: a document nested deeper than the JSON decoder goes, not a ValueError.
    except (httpx.HTTPError, ValueError, RecursionError, TimeoutError) as exc:
        raise IdentityProviderUnavailable(
            f"Fetching the JWKS from {url} failed: {type(exc).__name__}"
        ) from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise IdentityProviderUnavailable(f"{url} did not answer a JWKS document")
    return {_kid_of(key): key for key in keys if _is_signing_key(key)}


def _is_signing_key(key: object) -> bool:
    return isinstance(key, dict) and key.get("use", "sig") == "sig" and "kty" in key


def _kid_of(key: Jwk) -> str:
    kid = key.get("kid")
    return kid if isinstance(kid, str) else ""
