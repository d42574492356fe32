"""CORS for browsers on the `VOICE_GATEWAY_CORS_ORIGINS` allowlist, and for no one else.

Starlette's CORSMiddleware answers the allowlisted origins; it sits outside authentication, so a
preflight (which browsers send without credentials) is answered without any. A request from any
other origin bypasses it entirely and gets no `Access-Control-*` header at all; its preflight is
then an ordinary OPTIONS request (401 or 405), which the browser reads as "not allowed".
With no origin allowed (the default) the app leaves it out of its middleware stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ...vocabulary import CORS_EXPOSED_HEADERS
from .headers import first_header

ALLOWED_METHODS = ("GET", "POST", "DELETE")
# What the JS SDK's TokenSource.endpoint and our own clients send; no cookies, so no credentials.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key")
PREFLIGHT_MAX_AGE_S = 600


class AllowlistCORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.cors = CORSMiddleware(
            app,
            allow_origins=sorted(self.origins),
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE_S,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and first_header(scope, b"origin") in self.origins:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
