"""End-user tokens: the app's own user JWTs, verified here so a person acts only as its own `sub`.

Verification is strict on purpose: the header's `alg` must be one of the configured algorithms
before any key is looked up (`none` and HMAC-with-a-public-key never get that far), and the
signature, `exp`, `iss` and `aud` are all required. `sub` becomes the caller's identity.

Why verification runs on the event loop and not through the thread limiter: the key is already
parsed and cached, so what is left is one signature check, which costs the loop about what a hop
through `anyio.to_thread.run_sync` alone would (see bench/README.md, measured decisions).
A thread would make every request slower and contend with token signing for the shared limiter,
to move less work off the loop than the hop itself puts on it. The LiveKit SDK signs a JWT on the
loop inside every RoomService call for the same reason. What could block (fetching keys) is async
network I/O, in `jwks.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import jwt
from pydantic import SecretStr

CLOCK_SKEW_S = 30  # between the identity provider's clock and ours, for exp / nbf / iat
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

# From the most specific PyJWT error to the most general; the first match explains.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the user token has expired"),
    (jwt.ImmatureSignatureError, "the user token is not valid yet"),
    (jwt.InvalidAudienceError, "the user token is meant for another audience"),
    (jwt.InvalidIssuerError, "the user token comes from another issuer"),
    (jwt.MissingRequiredClaimError, "the user token lacks a required claim (exp, iss, aud, sub)"),
    (jwt.InvalidSignatureError, "the user token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the user token's algorithm does not match its key"),
    (jwt.InvalidKeyError, "the user token's key is unusable"),
    (jwt.PyJWTError, "the user token is malformed"),
)


class InvalidUserToken(Exception):
    """The bearer token is not an acceptable user token; the message says why, without secrets."""


class NotAJwt(InvalidUserToken):
    """Not even shaped as a JWT: with service keys configured too, most likely a mistyped key."""


class KeySource(Protocol):
    async def key_for(self, kid: str | None, algorithm: str) -> Any: ...


class SharedSecret:
    """HS256-style verification: one secret shared with the app that issues user tokens."""

    def __init__(self, secret: SecretStr) -> None:
        self._secret = secret

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        return self._secret.get_secret_value().encode()


class UserTokenVerifier:
    def __init__(
        self, keys: KeySource, *, issuer: str, audience: str, algorithms: Sequence[str]
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)

    async def subject_of(self, token: str) -> str:
        algorithm, kid = self._accepted_header(token)
        key = await self._keys.key_for(kid, algorithm)
        claims = self._verified_claims(token, key, algorithm)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidUserToken("the user token's sub is not a non-empty string")
        return subject

    def _accepted_header(self, token: str) -> tuple[str, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAJwt("the bearer token is not a JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self._algorithms:
            raise InvalidUserToken("the user token's algorithm is not one this gateway accepts")
        if kid is not None and not isinstance(kid, str):
            raise InvalidUserToken("the user token's kid is not a string")
        return str(algorithm), kid

    def _verified_claims(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            reason = next(text for kind, text in _REASONS if isinstance(exc, kind))
            raise InvalidUserToken(reason) from None
