"""Every request gets an id: the client's `X-Request-ID` when it is sane, a fresh one otherwise.

Set by `RequestObserver` (request_observer.py), the outermost middleware, into the request's
state, the logs' context and the answer's header."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from ...ids import new_request_id
from ...vocabulary import REQUEST_ID_PATTERN

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(REQUEST_ID_PATTERN)


def accepted_id(offered: str | None) -> str:
    if offered and _SAFE_ID.match(offered):
        return offered
    return new_request_id()


def request_id_of(request: Request[Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", "")) or new_request_id()
