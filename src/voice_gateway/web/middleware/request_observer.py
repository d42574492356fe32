"""One observation per request: an access log line and the HTTP metrics, from the same numbers.

Pure ASGI middleware inside `RequestIdMiddleware`, so the request id is known, and outside
everything that may answer early (auth, limits), so those answers are counted and logged too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...ops.logs import current_request_id
from ...ops.metrics import Metrics

access_logger = logging.getLogger("voice_gateway.access")

# Labels must stay few: a client may send any method or path, so neither is used as it came.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
MAX_LOGGED_PATH = 512


@dataclass(frozen=True)
class Observation:
    method: str
    path: str
    route: str
    status: int
    duration_s: float


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # no answer at all counts as a failure

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_observing)
        finally:
            self.metrics.http_in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, duration_s: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        route = route_template(scope.get("route"))
        seen = Observation(method, logged_path(scope), route, status, duration_s)
        self.metrics.http_requests.labels(method, route, str(status)).observe(duration_s)
        log_access(seen)


def route_template(route: BaseRoute | None) -> str:
    """The path the route was declared with (`/api/voice/session/{room_name}`), never the raw
    path, so one room name per series cannot happen."""
    return str(getattr(route, "path", None) or UNMATCHED_ROUTE)


def logged_path(scope: Scope) -> str:
    """The path as it came on the wire, still percent-encoded so no decoded newline or control
    character reaches a log line, without the query string (which may carry credentials)."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("unicode_escape")
    path = raw.partition(b"?")[0].decode("latin-1")
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


def log_access(seen: Observation) -> None:
    duration_ms = round(seen.duration_s * 1000, 2)
    access_logger.info(
        "%s %s %d %.2fms",
        seen.method,
        seen.path,
        seen.status,
        duration_ms,
        extra={
            "method": seen.method,
            "path": seen.path,
            "route": seen.route,
            "status": seen.status,
            "duration_ms": duration_ms,
            "request_id": current_request_id.get(),
        },
    )
