"""Request bodies over `VOICE_GATEWAY_MAX_BODY_BYTES` get 413 before they are read whole.

Pure ASGI middleware. A declared `Content-Length` over the limit is refused at once, nothing read.
A body without one (chunked) is counted as it streams in, and the read that crosses the limit
raises `PayloadTooLarge`, which the app answers as 413 problem+json; at most one chunk past the
limit is ever held.

Not Starlette's `RequestBodyLimitMiddleware` (1.x): it answers a declared Content-Length over the
limit only once the handler starts its response (so the handler runs, and may read the body),
and its 413 is text/plain, not problem+json. Both break the contract the body-limit tests hold.
"""

from __future__ import annotations

import sys

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import PayloadTooLarge
from ..problems import error_response
from .headers import first_header


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            error = self._too_large()
            await error_response(Request(scope), error)(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        return counted

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {self.max_bytes} bytes")


def _declared_length(scope: Scope) -> int:
    declared = first_header(scope, b"content-length") or ""
    # A server refuses a malformed Content-Length itself; if one gets here it counts as 0 and the
    # streaming count still applies. Twenty digits are over any limit, and int() of thousands of
    # digits would be slow or refused.
    if not (declared.isascii() and declared.isdigit()):
        return 0
    return int(declared) if len(declared) < 20 else sys.maxsize
