"""The door: on every path that needs credentials, the caller is authenticated and counted
against its limits before any handler or body is touched; a refusal (401, 429 problem+json) is
answered here. Every path needs credentials except the endpoints declared public (see
`web/endpoint.py`), so a new route is protected until someone decides otherwise.

The admitted `Caller` goes into the request's state; `caller_of` reads it back and fails closed:
a request that reached a handler with no caller at all (a route mounted outside this middleware,
a public path that asks) is refused, never trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ...access.caller import Caller
from ...access.control import AccessControl
from ...errors import GatewayError, Unauthenticated
from ..problems import error_response
from .headers import all_headers

# Not "voice_gateway.access": that is the access log's (request_observer.py).
logger = logging.getLogger("voice_gateway.refusals")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, public_paths: Collection[str]) -> None:
        self.app = app
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        access: AccessControl = scope["state"]["access"]
        authorization = all_headers(scope, b"authorization")
        try:
            caller = await access.admit(authorization, client_address(scope))
        except GatewayError as exc:
            logger.info("refused %s %s: %s", scope["method"], scope["path"], exc.detail)
            await error_response(Request(scope), exc)(scope, receive, send)
            return
        # A copy: some servers hand every request the same lifespan-state dict.
        scope["state"] = {**scope.get("state", {}), "caller": caller}
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def caller_of(request: Request[Any]) -> Caller:
    """The authenticated caller; 401 when nobody authenticated this request."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise Unauthenticated("Credentials are required: this request was not authenticated")
    return caller
