"""Who is calling: the seam between authentication (which sets it) and the handlers (which ask).

Authentication puts a `Caller` in the request's state. Handlers never parse credentials; they ask
the caller whether it may act for a user. Without authentication configured (development only),
every request is an anonymous caller with full rights.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from starlette.requests import Request


class CallerKind(Enum):
    ANONYMOUS = "anonymous"  # only when the gateway runs open, in development
    SERVICE = "service"  # a trusted backend holding a service key
    END_USER = "end_user"  # a person, proven by the app's own user JWT


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    subject: str | None = None  # the end user's `sub`; None for the other kinds

    def may_act_for(self, user_id: str) -> bool:
        return self.kind is not CallerKind.END_USER or self.subject == user_id


ANONYMOUS = Caller(CallerKind.ANONYMOUS)


def caller_of(request: Request) -> Caller:
    caller = getattr(request.state, "caller", None)
    return caller if isinstance(caller, Caller) else ANONYMOUS
