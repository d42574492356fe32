"""Who is calling, and the one rule of ownership: whom a caller may act for.

Authentication makes a `Caller`; the access middleware (`web/middleware/access.py`) puts it in the
request's state, and `caller_of` there reads it back, failing closed. Without authentication
configured (development only), every non-public request carries the anonymous caller, with full
rights, explicitly. Handlers never parse credentials.

Ownership is checked in one place, `require_may_act_for`, and only by the session service: for an
identity a request names (`user_id`, `participant_identity`) and for the session a room holds. A
handler that takes an identity from its body first lets an end user omit it:

    fill_own_identity(caller, data, field)            # an end user's own sub when it named none
    body = validate_as(Model, data)                   # 422 for a malformed identity
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import FieldError, Forbidden
from ..vocabulary import IDENTITY_ALPHABET, USER_ID_PATTERN


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


def require_may_act_for(caller: Caller, identity: str, field: str | None = None) -> None:
    """403 unless `caller` may act for `identity`. `field` names the request field the identity
    came from; None when it is the user the session in question belongs to (nothing the request
    sent is to blame then)."""
    if caller.may_act_for(identity):
        return
    if field is None:
        raise Forbidden("This session belongs to another user")
    # The value is not echoed: it is the caller's input, and the sub is the caller's identity.
    raise Forbidden(
        f"An end user may act only as itself: {field} must be the token's subject",
        field_errors=[FieldError(field, "is not the subject of the caller's token")],
    )
