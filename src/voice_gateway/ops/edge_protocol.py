"""uvicorn's httptools protocol with the bounds a public edge needs, keeping httptools' speed.

What uvicorn 0.54 + httptools lack, added here without a second parser:

- An upgrade offer the gateway declines (h2c from Java, Ktor or `curl --http2`; it serves no
  WebSocket either) leaves llhttp in upgrade state: the body is skipped as "the other protocol"
  and the connection wedges (uvicorn #2722, httptools #124). Here the request goes on as plain
  HTTP/1.1: a fresh parser is primed with the request's framing headers and fed the bytes after
  the head, so the body and any pipelined request are read as without the offer.
- A head (request line and headers) over `max_header_bytes` gets 431 before httptools, which joins
  the pieces of a header with `+=`, can be made to spend seconds of loop time on it.
- A head that does not arrive whole within `header_read_timeout_s` (from the connection's start,
  or from the first byte of a later request), or a body not whole within `body_read_timeout_s`,
  gets 408; a connection that sent nothing at all is just closed.
- Connections over `max_connections` get 503 at once, before they can exhaust the fds.
- A request that finds `max_requests_in_flight` requests already being served gets 503
  `overloaded` with `Retry-After` as soon as its head is read: before its body is read, before
  the app (and so LiveKit) sees it, on the same keep-alive connection (a CORS preflight from an
  allowed origin aside: it is served, so the browser goes on to read the 503 itself). Built
  here, not in a middleware, because under overload the refusal itself must be nearly free: no
  task, no ASGI scope, no middleware stack (bench/README.md, measured decisions). The paths in
  `never_shed_paths` (liveness, readiness, metrics) are always served.
- A request httptools refuses gets problem+json with a request id, not uvicorn's text/plain.
- An answer framed by Content-Length (every one the gateway makes) goes out in one write, not
  head and body apart: one system call and one TCP segment (ops/edge_cycle.py).

Every such answer closes the connection after a short lingering read, so the client can read it
instead of losing it to a reset while it is still sending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import FunctionType
from typing import Any, ClassVar, cast

import httptools
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from .edge_answers import (
    HEAD_TOO_LARGE,
    OVERLOADED,
    READ_TIMEOUT,
    TOO_MANY_IN_FLIGHT,
    PrebuiltAnswer,
    answer_bytes,
    bad_request,
    cors_head,
)
from .edge_answers import EdgeProblem as Problem
from .edge_cycle import EdgeCycle
from .edge_events import EdgeEvents

LINGER_S = 2.0  # how long a refused client may go on sending before the close
# After a request is refused past the in-flight bound, its connection is not read again for this
# long: a client that ignores Retry-After and asks again at once must not turn the refusals
# themselves into the load (bench/README.md, measured decisions). Such a client's next request
# waits this long, then at most a full in-flight queue (0.1-0.2 s): 0.3 keeps that under 0.5 s.
SHED_PAUSE_S = 0.3
FRAMING_HEADERS = (b"content-length", b"transfer-encoding")
HEAD_OVERHEAD = 4  # ": " and CRLF per header line


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int
    header_read_timeout_s: float
    body_read_timeout_s: float
    max_connections: int
    max_requests_in_flight: int
    never_shed_paths: frozenset[bytes] = frozenset()
    cors_origins: frozenset[bytes] = frozenset()  # VOICE_GATEWAY_CORS_ORIGINS: see cors_head


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop httptools at once."""


class EdgeProtocol(HttpToolsProtocol):
    limits: ClassVar[EdgeLimits]
    events: ClassVar[EdgeEvents]
    shed_answer: ClassVar[PrebuiltAnswer]
    in_flight: ClassVar[InFlight]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # reading a request line and headers, not a body
        self._head_bytes = 0  # bytes received since this head began
        self._read_timer: asyncio.TimerHandle | None = None
        self._replaying = False  # feeding a fresh parser the head it must assume
        self._skip_bogus_completion = False  # llhttp "completes" a declined upgrade's message
        self._lingering = False
        self._shedding = False  # this request was answered 503: its body is read and dropped

    # --- the connection ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.events.opened()
        if len(self.connections) > self.limits.max_connections:
            self._refuse(OVERLOADED, "connection_limit", self.limits.max_connections)
            return
        self._arm_read_timer(self.limits.header_read_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.closed()
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        self._feed(data)
        # Refused while fed (a whole head over the limit): it lingers, and is not refused again.
        if not self._lingering and not self.transport.is_closing():
            self._bound_what_is_pending()

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._go_on_without_upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, HeadTooLarge):
                self._refuse(HEAD_TOO_LARGE, "headers_too_large", self.limits.max_header_bytes)
            else:
                self._refuse(bad_request(str(error)), "invalid_http", 0)

    def _bound_what_is_pending(self) -> None:
        """After each read: a head still incomplete may not grow past the limit, and whatever is
        incomplete (head or body) is read against its deadline."""
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(HEAD_TOO_LARGE, "headers_too_large", self.limits.max_header_bytes)
        elif self._read_timer is None and (self._head_bytes or not self._in_head):
            timeout_s = self.limits.header_read_timeout_s
            self._arm_read_timer(timeout_s if self._in_head else self.limits.body_read_timeout_s)

    # --- declined upgrades ---

    def _go_on_without_upgrade(self, rest: bytes) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._replaying = True
        try:
            self.parser.feed_data(self._framing_head())
        finally:
            self._replaying = False
        if rest:
            self._feed(rest)

    def _framing_head(self) -> bytes:
        """A head with only this request's framing: the fresh parser then reads its body."""
        framing = [name + b": " + value for name, value in self.headers if name in FRAMING_HEADERS]
        return b"\r\n".join([b"POST / HTTP/1.1", *framing, b"", b""])

    # --- parser callbacks ---

    def on_message_begin(self) -> None:
        if not self._replaying:
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._replaying:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._replaying:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._replaying:
            return
        if self._head_size() > self.limits.max_header_bytes:
            raise HeadTooLarge
        self._in_head = False
        self._cancel_read_timer()
        self._skip_bogus_completion = self.parser.should_upgrade()
        if self._over_in_flight_bound():
            self._shed_request()
            return
        _uvicorn_on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        if not self._shedding:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._skip_bogus_completion:
            self._skip_bogus_completion = False  # the real one comes from the fresh parser
            return
        self._in_head, self._head_bytes = True, 0
        self._cancel_read_timer()
        if self._shedding:
            self._shedding = False
            self.flow.pause_reading()
            # Then as after any answer: reading resumes, the keep-alive timer is armed.
            self.loop.call_later(SHED_PAUSE_S, self.on_response_complete)
            return
        super().on_message_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(n) + len(v) + HEAD_OVERHEAD for n, v in self.headers)

    # --- the in-flight bound ---

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self.in_flight.count += 1
        served = partial(_served, app, self.in_flight, cast(EdgeCycle, cycle))
        super()._start_asgi_task(cycle, served)

    def _over_in_flight_bound(self) -> bool:
        # Not uvicorn's `tasks`: a finished task leaves it only once its done-callbacks run, a
        # loop pass later; under load that was a third of the bound. A pipelined request behind
        # one still being answered waits its turn instead (answers keep their order).
        return (
            self.in_flight.count >= self.limits.max_requests_in_flight
            and (self.cycle is None or self.cycle.response_complete)
            and not self._skip_bogus_completion
            and self.url.partition(b"?")[0] not in self.limits.never_shed_paths
            and not self._is_allowed_preflight()
        )

    def _is_allowed_preflight(self) -> bool:
        # Never shed either: a browser whose preflight failed reports a CORS error, and its page
        # never sees the 503 and Retry-After its request would get; a preflight is answered in
        # one step of the app, calls nothing and holds no place in flight.
        if self.parser.get_method() != b"OPTIONS" or not self._cors_head():
            return False
        return any(name == b"access-control-request-method" for name, _ in self.headers)

    def _cors_head(self) -> bytes:
        if not self.limits.cors_origins:
            return b""
        origin = next((value for name, value in self.headers if name == b"origin"), None)
        return cors_head(origin) if origin in self.limits.cors_origins else b""

    def _shed_request(self) -> None:
        self._shedding = True
        self.events.request_shed(self.client)
        cors = self._cors_head()
        if self.parser.should_keep_alive():
            self.transport.write(self.shed_answer(cors))
        else:
            limit = self.limits.max_requests_in_flight
            self.transport.write(answer_bytes(TOO_MANY_IN_FLIGHT, limit, extra_head=cors))
            self._linger()

    # --- deadlines and refusals ---

    def _arm_read_timer(self, timeout_s: float) -> None:
        self._read_timer = self.loop.call_later(timeout_s, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self._in_head:
            self._refuse(READ_TIMEOUT, "body_timeout", self.limits.body_read_timeout_s)
        elif self._head_bytes:
            self._refuse(READ_TIMEOUT, "header_timeout", self.limits.header_read_timeout_s)
        else:  # nothing of a request came: nothing to answer
            self.events.shed("header_timeout", self.client)
            self.transport.close()

    def _refuse(self, problem: Problem, reason: str, limit: float) -> None:
        self.events.shed(reason, self.client)
        self._cancel_read_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            # The app may be waiting for this body: it now hears the client is gone.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(answer_bytes(problem, limit))
        self._linger()

    def _linger(self) -> None:
        """Stop reading requests, send FIN, and close when the client does or LINGER_S passes."""
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def _reading_edge_cycle(function: Callable[..., None]) -> Callable[..., None]:
    """uvicorn's own function, which builds the request's cycle by the module-level name
    `RequestResponseCycle`, reading that name as EdgeCycle. The least of uvicorn changed: not a
    copy of its on_headers_complete, and not the class of the cycle switched after it is built
    (CPython then keeps its attributes in a dict: each read was ~3x slower, the whole answer
    slower than two writes). tests/ops/test_edge_cycle.py fails if uvicorn stops using the name."""
    names = {**function.__globals__, "RequestResponseCycle": EdgeCycle}
    code = function.__code__
    return FunctionType(code, names, function.__name__, function.__defaults__, function.__closure__)


_uvicorn_on_headers_complete = _reading_edge_cycle(HttpToolsProtocol.on_headers_complete)


class InFlight:
    """Requests being served now, over every connection of one server."""

    def __init__(self) -> None:
        self.count = 0


async def _served(app: ASGI3Application, in_flight: InFlight, cycle: EdgeCycle, *args: Any) -> None:
    try:
        await app(*args)
    finally:
        in_flight.count -= 1  # in the request's task, as it ends: not a loop pass later
        cycle.send_held_head()  # before uvicorn closes a connection whose answer broke off


def edge_protocol(limits: EdgeLimits, events: EdgeEvents) -> type[EdgeProtocol]:
    """The protocol class uvicorn builds per connection, bound to this server's limits."""

    class BoundEdgeProtocol(EdgeProtocol):
        pass

    BoundEdgeProtocol.limits = limits
    BoundEdgeProtocol.events = events
    BoundEdgeProtocol.in_flight = InFlight()
    BoundEdgeProtocol.shed_answer = PrebuiltAnswer(
        TOO_MANY_IN_FLIGHT, limits.max_requests_in_flight
    )
    return BoundEdgeProtocol
