"""Every request gets an id: the client's `X-Request-ID` when it is sane, a fresh one otherwise."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...ids import new_request_id
from ...ops.logs import current_request_id
from ...vocabulary import REQUEST_ID_PATTERN

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(REQUEST_ID_PATTERN)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _accepted_id(Headers(scope=scope).get(HEADER))
        # A copy: some servers (asgi-lifespan) hand every request the same lifespan-state dict.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _accepted_id(offered: str | None) -> str:
    if offered and _SAFE_ID.match(offered):
        return offered
    return new_request_id()


def request_id_of(request: Request[Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", "")) or new_request_id()
