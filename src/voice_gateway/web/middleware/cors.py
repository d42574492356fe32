"""CORS for browsers on the `VOICE_GATEWAY_CORS_ORIGINS` allowlist, and for no one else.

Starlette's CORSMiddleware answers the allowlisted origins; it sits outside authentication, so a
preflight (which browsers send without credentials) is answered without any. A request from any
other origin bypasses it entirely and gets no `Access-Control-*` header at all; its preflight is
then an ordinary OPTIONS request (401 or 405), which the browser reads as "not allowed".
An allowed origin's preflight asking for a method or header the gateway does not take gets 400
`cors_preflight_refused` as problem+json saying which, not Starlette's text/plain "Disallowed
CORS headers": the browser only reads "not allowed", but whoever debugs it with curl reads why.
With no origin allowed (the default) the app leaves it out of its middleware stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import SAFELISTED_HEADERS, CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ...vocabulary import CORS_EXPOSED_HEADERS, cors_answer_headers
from ..problems import HttpProblem, problem_response
from .headers import first_header

ALLOWED_METHODS = ("GET", "POST", "DELETE")
# What the JS SDK's TokenSource.endpoint and our own clients send; no cookies, so no credentials.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key")
PREFLIGHT_MAX_AGE_S = 600
PREFLIGHT_REFUSED = HttpProblem(400, "cors_preflight_refused", "CORS preflight refused")


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
        if scope["type"] != "http" or first_header(scope, b"origin") not in self.origins:
            await self.app(scope, receive, send)
        elif scope["method"] == "OPTIONS" and first_header(scope, b"access-control-request-method"):
            await self._preflight(scope)(scope, receive, send)
        else:
            await self.cors(scope, receive, send)

    def _preflight(self, scope: Scope) -> ASGIApp:
        headers = Headers(scope=scope)
        answer = self.cors.preflight_response(request_headers=headers)
        if answer.status_code == 200:
            return answer
        detail = f"This origin may send {_may_send()}; the preflight asks for {_asked(headers)}."
        return problem_response(Request(scope), PREFLIGHT_REFUSED, detail)


def cors_headers(origin: str | None, origins: frozenset[str]) -> dict[str, str]:
    """What CORSMiddleware adds to an allowed origin's answer, for one answered outside it."""
    return cors_answer_headers(origin) if origin is not None and origin in origins else {}


def _may_send() -> str:
    return f"methods {', '.join(ALLOWED_METHODS)} and headers {', '.join(ALLOWED_HEADERS)}"


def _asked(headers: Headers) -> str:
    """What the preflight asks for that is not allowed (Starlette's own test, in words)."""
    method = headers["access-control-request-method"]
    allowed = {name.lower() for name in (*ALLOWED_HEADERS, *SAFELISTED_HEADERS)}
    asked = (name.strip() for name in headers.get("access-control-request-headers", "").split(","))
    refused = [name for name in asked if name and name.lower() not in allowed]
    parts = [] if method in ALLOWED_METHODS else [f"method {method}"]
    parts += [f"header {', '.join(refused)}"] if refused else []
    return " and ".join(parts) or "what Starlette's CORS refuses"
