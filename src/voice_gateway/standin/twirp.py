"""Twirp as the LiveKit server speaks it: errors as JSON `{code, msg, meta?}` with a fixed status,
and the methods a service serves."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

if TYPE_CHECKING:
    from .auth import Grants
    from .store import RoomStore

T = TypeVar("T")

# twirp errors.go ServerHTTPStatusFromErrorCode
STATUS_BY_CODE: Mapping[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
}

# The server converts its psrpc domain errors through twirp's Unknown error and keeps that
# error's text as the message (protocol utils/xtwirp/errors.go), so clients see this prefix.
DOMAIN_PREFIX = "twirp error unknown: "


class TwirpError(Exception):
    """An error answered as a Twirp JSON body; `status` defaults to the code's Twirp status."""

    def __init__(
        self,
        code: str,
        msg: str,
        *,
        meta: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = dict(meta or {})
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 500)

    def body(self) -> bytes:
        payload: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.meta:  # twirp omits an empty meta
            payload["meta"] = self.meta
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def domain_error(code: str, msg: str) -> TwirpError:
    """A server domain error (room or participant not found, name too long), prefix included."""
    return TwirpError(code, DOMAIN_PREFIX + msg)


def bad_route(msg: str, method: str, path: str) -> TwirpError:
    return TwirpError("bad_route", msg, meta={"twirp_invalid_route": f"{method} {path}"})


def malformed(msg: str) -> TwirpError:
    return TwirpError("malformed", msg)


def permissions_denied() -> TwirpError:
    # The server answers every grant failure with 401, never 403 (pkg/service/auth.go).
    return TwirpError("unauthenticated", "permissions denied")


def invalid_argument(argument: str, validation: str) -> TwirpError:
    """twirp.InvalidArgumentError: native, so no domain prefix, and the argument in `meta`."""
    return TwirpError("invalid_argument", f"{argument} {validation}", meta={"argument": argument})


def found(value: T | None, missing: Callable[[], TwirpError]) -> T:
    """`value`, or the error a handler answers when what it looked up is not there."""
    if value is None:
        raise missing()
    return value


class NoResponse(TwirpError):
    """What a psrpc call routed to a room no node holds answers, once psrpc's timeout (3 s) has
    passed: the app waits that long before it answers (StandInState.no_response_after_s)."""

    def __init__(self) -> None:
        super().__init__("unavailable", DOMAIN_PREFIX + "no response from servers")


Handler = Callable[["RoomStore", "Grants | None", Any], Message]


@dataclass(frozen=True, slots=True)
class TwirpMethod:
    request_type: type[Message]
    handler: Handler
