"""Who a request comes from, proven by its `Authorization: Bearer` credential.

A bearer credential is first compared with the service keys, then, when end-user tokens are
configured, verified as one. Failures are 401 with an RFC 6750 `WWW-Authenticate` challenge that
says why; neither the credential nor any part of it is ever echoed or logged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import Unauthenticated
from ..vocabulary import BEARER_TOKEN_PATTERN
from .caller import ANONYMOUS, Caller, CallerKind
from .end_user_tokens import InvalidUserToken, NotAJwt, UserTokenVerifier
from .service_keys import ServiceKeys

REALM = "voice-gateway"
MAX_CREDENTIAL_CHARS = 8192  # far above any real JWT; bounds the work a forged one can cause
# RFC 6750 b64token; the scheme is case-insensitive (RFC 9110).
# Trailing spaces or tabs: RFC 9110's optional whitespace, which some clients leave on.
_BEARER = re.compile(rf"^[Bb][Ee][Aa][Rr][Ee][Rr] +({BEARER_TOKEN_PATTERN})[ \t]*$")


class Authenticator:
    def __init__(self, service_keys: ServiceKeys, user_tokens: UserTokenVerifier | None) -> None:
        self._service_keys = service_keys
        self._user_tokens = user_tokens

    @property
    def open(self) -> bool:
        """No authentication configured: everyone is an anonymous caller (development only)."""
        return not self._service_keys and self._user_tokens is None

    async def caller_for(self, authorization: Sequence[str]) -> Caller:
        if self.open:
            return ANONYMOUS
        credential = bearer_credential(authorization)
        if key_id := self._service_keys.match(credential):
            return Caller(CallerKind.SERVICE, key_id=key_id)
        if self._user_tokens is None:
            raise invalid_credential("the bearer credential is not a valid service key")
        try:
            subject = await self._user_tokens.subject_of(credential)
        except NotAJwt:
            raise invalid_credential(self._not_a_jwt()) from None
        except InvalidUserToken as exc:
            raise invalid_credential(f"{exc}") from None
        return Caller(CallerKind.END_USER, subject=subject)

    def _not_a_jwt(self) -> str:
        if self._service_keys:  # not "not a JWT" alone: that sends a mistyped key's owner astray
            return "the bearer credential is neither a valid service key nor a JWT"
        return "the bearer token is not a JWT"


def bearer_credential(authorization: Sequence[str]) -> str:
    """The credential of the one `Authorization: Bearer` header; 401 for anything else."""
    if not authorization:
        raise Unauthenticated(
            "Credentials are required: send Authorization: Bearer <service key or user token>",
            challenge=f'Bearer realm="{REALM}"',
        )
    if len(authorization) > 1:
        raise invalid_credential("more than one Authorization header was sent")
    if len(authorization[0]) > MAX_CREDENTIAL_CHARS:
        raise invalid_credential("the Authorization header is too long")
    match = _BEARER.match(authorization[0])
    if match is None:
        raise invalid_credential("the Authorization header must be 'Bearer <token>'")
    return match.group(1)


def invalid_credential(reason: str) -> Unauthenticated:
    # `reason` is always our own fixed text, so it is safe inside the quoted header value. RFC 6750
    # would answer a malformed header 400 `invalid_request`; one 401 for every bad credential
    # keeps clients' retry logic simple and tells a prober nothing more.
    header = f'Bearer realm="{REALM}", error="invalid_token", error_description="{reason}"'
    detail = reason[0].upper() + reason[1:]
    return Unauthenticated(detail, challenge=header)
