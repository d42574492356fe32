"""Who is calling: the seam between authentication (which sets it) and the handlers (which ask).

Authentication puts a `Caller` in the request's state. Handlers never parse credentials; they ask
the caller whether it may act for a user. Without authentication configured (development only),
the access middleware (access.py) puts the anonymous caller, with full rights, in every
non-public request's state explicitly. A request that reached a handler with no caller at all
(a route mounted outside the middleware, a public path that asks) is refused, never trusted:
`caller_of` fails closed.

A handler that takes an identity from its body (`user_id`, `participant_identity`) does three
things, in this order:

    fill_own_identity(caller, data, field)            # an end user's own sub when it named none
    body = validate_as(Model, data)                   # 422 for a malformed identity
    require_may_act_for(caller, body.<field>, field)  # 403 for somebody else's
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.requests import Request

from ..errors import FieldError, Forbidden, Unauthenticated
from ..web.models import USER_ID_PATTERN


class CallerKind(Enum):
    ANONYMOUS = "anonymous"  # only when the gateway runs open, in development
    SERVICE = "service"  # a trusted backend holding a service key
    END_USER = "end_user"  # a person, proven by the app's own user JWT


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    subject: str | None = None  # the end user's `sub`; None for the other kinds
    key_id: str | None = None  # which service key (a digest prefix, never the key); SERVICE only

    def may_act_for(self, user_id: str) -> bool:
        return self.kind is not CallerKind.END_USER or self.subject == user_id


ANONYMOUS = Caller(CallerKind.ANONYMOUS)
_IDENTITY = re.compile(USER_ID_PATTERN)  # with fullmatch: no trailing newline slips by
IDENTITY_ALPHABET = "1-128 characters of A-Z a-z 0-9 _ . @ -"


def caller_of(request: Request) -> Caller:
    """The authenticated caller; 401 when nobody authenticated this request."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise Unauthenticated("Credentials are required: this request was not authenticated")
    return caller


def fill_own_identity(caller: Caller, data: dict[str, Any], field: str) -> None:
    """An end user that names no identity in `data[field]` acts as its own `sub`. Services and
    anonymous callers must name one themselves (or the handler picks one)."""
    if data.get(field) is None and caller.kind is CallerKind.END_USER:
        data[field] = usable_subject(caller.subject or "", field)


def usable_subject(subject: str, field: str) -> str:
    """The end user's `sub` as its identity; 403 when it cannot be one. A 422 would blame a field
    the end user never sent; the identity alphabet stays narrow (room names and LiveKit
    identities are built from it), so an IdP whose subs do not fit (`auth0|...`) is refused."""
    if not _IDENTITY.fullmatch(subject):
        raise Forbidden(
            "The token's subject cannot be used as a LiveKit identity here: "
            f"it must be {IDENTITY_ALPHABET}",
            field_errors=[
                FieldError(field, f"taken from the token's sub, which is not {IDENTITY_ALPHABET}")
            ],
        )
    return subject


def require_may_act_for(caller: Caller, identity: str, field: str = "user_id") -> None:
    if not caller.may_act_for(identity):
        # The value is not echoed: it is the caller's input, and the sub is the caller's identity.
        raise Forbidden(
            f"An end user may act only as itself: {field} must be the token's subject",
            field_errors=[FieldError(field, "is not the subject of the caller's token")],
        )
