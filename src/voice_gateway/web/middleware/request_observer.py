"""The outermost middleware: each request's id, and one observation per request (an access log
line and the HTTP metrics, from the same numbers); while the gateway drains, every answer closes
its connection (see `ops/drain.py`), and a request the stop cuts off (past the drain's grace, or
by a second signal) is answered 503 `shutting_down`, not left to the server's text/plain 500.

Outside everything that may answer early (auth, limits), so those answers are counted, logged and
carry their id too. One middleware with one hook on the answer's start, not three (request id,
observer, drain) each wrapping `send`: 1.7% of a session's instructions (bench/README.md,
measured decisions).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...ops.drain import Drain
from ...ops.logs import current_request_id, log_fields
from ...ops.metrics import Metrics
from ..problems import SHUTTING_DOWN, problem_response
from .cors import cors_headers
from .headers import first_header
from .request_id import HEADER as REQUEST_ID_HEADER
from .request_id import accepted_id

access_logger = logging.getLogger("voice_gateway.access")
logger = logging.getLogger("voice_gateway.server")  # the stop's lines are all under one name

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
    def __init__(
        self, app: ASGIApp, metrics: Metrics, drain: Drain, cors_origins: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.drain = drain
        self.cors_origins = frozenset(cors_origins)  # the cut-off 503 is answered outside CORS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # no answer at all counts as a failure
        request_id = accepted_id(first_header(scope, b"x-request-id"))
        # A copy: some servers (asgi-lifespan) hand every request the same lifespan-state dict.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        current_request_id.set(request_id)

        answering = False

        async def send_observing(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status, answering = message["status"], True
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if self.drain.started:
                    # Keep-alive clients reconnect through their load balancer, which by then
                    # routes to a replica that is staying.
                    headers["Connection"] = "close"
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_observing)
        except asyncio.CancelledError:
            # During a drain only the server cancels a request: its stop cut this one off.
            if answering or not self.drain.started:
                raise
            cors = cors_headers(first_header(scope, b"origin"), self.cors_origins)
            await answer_cut_off(scope, receive, send_observing, cors)
        finally:
            self.metrics.http_in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, duration_s: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        route = route_template(scope.get("route"))
        seen = Observation(method, logged_path(scope), route, status, duration_s)
        # Methods and routes are bounded (above), so the series stay few.
        self.metrics.http_request_series(method, route, str(status)).observe(duration_s)
        log_access(seen)


async def answer_cut_off(
    scope: Scope, receive: Receive, send: Send, cors: Mapping[str, str]
) -> None:
    """The caller hears that the replica went away and may retry, instead of a 500 and a
    traceback in the log. A room half created is already being deleted; a session created and
    waiting for its agent stays (its events tell the app; with its Idempotency-Key a retry gets
    that session), and ends as any session no user joins does."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()  # the cancellation is handled here: the answer is all that is left
    logger.warning(
        "%s %s cut off by the stop: answered 503 shutting_down", scope["method"], logged_path(scope)
    )
    detail = (
        "The gateway stopped before this request was finished; "
        "retry it (with the same Idempotency-Key, if it had one)"
    )
    headers = {"Retry-After": "1", **cors}
    cut_off = problem_response(Request(scope), SHUTTING_DOWN, detail, headers=headers)
    await cut_off(scope, receive, send)


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
    """One line per request; its fields in the order `ACCESS_EXTRAS` names them, so the JSON
    formatter renders it from its template."""
    duration_ms = round(seen.duration_s * 1000, 2)
    log_fields(
        access_logger,
        logging.INFO,
        "%s %s %d %.2fms",
        (seen.method, seen.path, seen.status, duration_ms),
        {
            "method": seen.method,
            "path": seen.path,
            "route": seen.route,
            "status": seen.status,
            "duration_ms": duration_ms,
            "request_id": current_request_id.get(),
        },
    )
