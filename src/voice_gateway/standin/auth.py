"""The server's API-key middleware: find the token, check it, and hand its grants on.

Mirrors livekit/livekit `pkg/service/auth.go` and protocol `auth/verifier.go` as released in
v1.13.5: HS256 only, `iss` names the API key, 60 s leeway on `exp` and `nbf`, `exp` optional.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

BEARER_PREFIX = "Bearer "  # compared case-sensitively, like strings.HasPrefix
LEEWAY_S = 60
# Never echo a token: the server puts the whole token into this 401, our logs must not carry it.
REDACTED = "<redacted>"
# The methods golang-jwt knows; any other `alg` already fails the unverified parse.
GO_JWT_ALGORITHMS = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    | {"ES256", "ES384", "ES512", "EdDSA", "none"}
)


class AuthFailure(Exception):
    """The middleware's plain-text 401; `text` is the exact body."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class Grants:
    """What a verified token allows: the `video` grant (camelCase keys) and the identity."""

    api_key: str
    identity: str = ""
    video: Mapping[str, Any] = field(default_factory=dict)

    def allows(self, grant: str) -> bool:
        return self.video.get(grant) is True

    @property
    def room(self) -> str:
        room = self.video.get("room", "")
        return room if isinstance(room, str) else ""


def token_from(authorization: str | None, access_token: str | None) -> str | None:
    """The header wins when present; an empty result means "no token", not an error."""
    if authorization:
        if not authorization.startswith(BEARER_PREFIX):
            raise AuthFailure("invalid authorization header. Must start with Bearer ")
        return authorization[len(BEARER_PREFIX) :] or None
    return access_token or None


def verify(token: str, secrets: Mapping[str, str], now: float | None = None) -> Grants:
    api_key, claims, problem = _checked(token, secrets)
    problem = problem or _time_problem(claims, time.time() if now is None else now)
    if problem:
        raise AuthFailure(f"invalid token: {REDACTED}, error: {problem}")
    return _grants_from(api_key, claims)


# Tokens parsed before, by the token: a gateway sends one service token for minutes, and parsing
# it again was a sixth of a call's CPU (bench: slow-livekit, 1000 calls/s). The signature and the
# times are checked on every call. Bounded: cleared when full.
_PARSED: dict[str, tuple[dict[str, Any], dict[str, Any], bytes]] = {}
PARSED_TOKENS_KEPT = 256


def _checked(token: str, secrets: Mapping[str, str]) -> tuple[str, dict[str, Any], str]:
    """The token's API key, claims and signature problem ("" when it verifies)."""
    if (parsed := _PARSED.get(token)) is None:
        parsed = _parse_unverified(token)
        if len(_PARSED) >= PARSED_TOKENS_KEPT:
            _PARSED.clear()
        _PARSED[token] = parsed
    header, claims, signature = parsed
    api_key = claims.get("iss", "")
    secret = secrets.get(api_key, "")
    if not secret:
        raise AuthFailure(f"invalid API key: {api_key}")
    return api_key, claims, _signature_problem(token, header, signature, secret)


def _parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthFailure("invalid authorization token") from exc
    claims: dict[str, Any] = decoded["payload"]
    if not _parses_in_go(decoded["header"], claims):
        raise AuthFailure("invalid authorization token")
    return decoded["header"], claims, decoded["signature"]


def _parses_in_go(header: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    # golang-jwt rejects an unknown `alg` before verifying, and decodes into typed claims, so a
    # mistyped registered claim fails the parse too.
    dates_ok = all(_is_numeric_date(claims.get(name, 0)) for name in ("exp", "nbf"))
    return (
        header.get("alg") in GO_JWT_ALGORITHMS
        and isinstance(claims.get("iss", ""), str)
        and dates_ok
    )


def _is_numeric_date(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _signature_problem(token: str, header: Mapping[str, Any], signature: bytes, secret: str) -> str:
    # One HMAC done here rather than through PyJWT, which warns on every check with a short
    # secret such as the dev pair's "secret".
    if header.get("alg") != "HS256":
        return f"token signature is invalid: signing method {header.get('alg')} is invalid"
    signing_input = token.rpartition(".")[0].encode()
    expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return "token signature is invalid: signature is invalid"
    return ""


def _time_problem(claims: Mapping[str, Any], now: float) -> str:
    problems = []
    if "exp" in claims and now >= claims["exp"] + LEEWAY_S:
        problems.append(f"token is expired by {go_duration(now - claims['exp'])}")
    if "nbf" in claims and now < claims["nbf"] - LEEWAY_S:
        problems.append("token is not valid yet")
    return "token has invalid claims: " + ", ".join(problems) if problems else ""


def go_duration(seconds: float) -> str:
    """Whole seconds in Go's Duration.String form: `45s`, `2m3s`, `1h0m5s`."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _grants_from(api_key: str, claims: Mapping[str, Any]) -> Grants:
    video = claims.get("video")
    identity = claims.get("sub") or claims.get("jti") or ""
    return Grants(
        api_key=api_key,
        identity=identity if isinstance(identity, str) else "",
        video=video if isinstance(video, dict) else {},
    )
