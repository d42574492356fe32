"""The gateway's connection pools: keep-alive HTTP/1.1 connections carrying POSTs with a
Content-Length, answered with a status, a Content-Type, a `Retry-After` and a body. One to LiveKit
for its Twirp calls (a protobuf body in, `post`); one per origin of the app's event receivers
(sessions/receivers.py, `send`), where httpx had cost ~700 µs of CPU per session, more than the
session itself (bench/README.md, measured decisions).

Not aiohttp, which `livekit-api` calls through: a Twirp call is the plainest HTTP there is (one
origin, a POST with a Content-Length, an answer LiveKit always frames), and aiohttp's general
machinery for it (request and response objects, timers, a stream reader, the SDK's headers and
failover loop on top) cost ~190 µs of CPU per call where this costs ~65 µs (both measured against
the stand-in, 32 calls at a time; bench/README.md, measured decisions). Here the loop's own
sockets (TLS by `ssl`, verified as aiohttp verifies) and httptools, the C parser uvicorn serves
with, read the answers.

At most `max_connections` are open; a call past them waits for one to be given back, first come
first served: a connection given back (or the slot of one closed) is handed to the call that has
waited longest, never kept by the call that gave it while others wait. A connection idle longer
than `IDLE_S` is closed rather than reused, and a call whose reused connection the server closed
before answering is sent once more on a new one (the server may close an idle connection just as
a request goes out; every Twirp call the gateway makes can be repeated). Deadlines are the
caller's (`LiveKitCalls`): a call cancelled mid-answer closes its connection. After `aclose` no
connection is opened: calls waiting for one, and new ones that would open one, fail at once.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import cast
from urllib.parse import urlsplit

import httptools

from .. import __version__

IDLE_S = 15.0  # aiohttp's keep-alive default; LiveKit (Go) keeps idle connections longer
# An answer's status line and headers: more is not a server to talk to (h11, under httpx, stops
# at 16 KiB); httptools would go on joining one header's pieces, slower the longer it grows.
MAX_HEAD_BYTES = 64 * 1024
USER_AGENT = f"voice-gateway/{__version__}"
TWIRP_MEDIA_TYPE = "application/protobuf"  # what a Twirp call sends, and LiveKit answers with
CLOSED = "the gateway is stopping: its connections are closed"


@dataclass(frozen=True)
class TwirpAnswer:
    status: int
    content_type: str  # lower case, without parameters
    body: bytes  # at most the pool's `body_limit` bytes of it
    retry_after: str | None = None  # the header, as sent


class Unreachable(Exception):
    """No answer came: no connection, or it closed before answering. `why` says so in words."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class NotHttp(Exception):
    """What answered does not speak HTTP/1.1."""


class _Closed(Exception):
    def __init__(self, answering: bool) -> None:
        super().__init__("closed")
        self.answering = answering  # part of an answer had arrived


class TwirpPool:
    def __init__(
        self,
        url: str,
        max_connections: int,
        content_type: str = TWIRP_MEDIA_TYPE,
        body_limit: int | None = None,
    ) -> None:
        """`body_limit`: the most of an answer's body kept (the rest is read and dropped), for
        servers whose answers' bodies mean nothing (event receivers): those may also end a body
        of any status by closing. None keeps it all (LiveKit's)."""
        parts = urlsplit(url.replace("ws", "http", 1) if url.startswith("ws") else url)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._tls else 80)
        # An IPv6 literal goes back in its brackets (RFC 9110 7.2), which `hostname` strips.
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        self._base_path = parts.path.rstrip("/")
        self._fixed_headers = (
            f"Host: {host_header}\r\nUser-Agent: {USER_AGENT}\r\nContent-Type: {content_type}\r\n"
        )
        self._body_limit = body_limit
        self._max = max_connections
        self._open = 0  # connected or connecting, idle or busy, or handed to a waiting call
        self._idle: list[_Connection] = []  # most recently used last: reused first
        # Calls waiting, longest first. Each is handed a connection given back, or None: the slot
        # of one closed, to connect in. So while any waits, none is idle and all slots are taken,
        # and a call that comes (or comes back) meanwhile waits behind them.
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    async def post(self, path: str, token: str, body: bytes) -> TwirpAnswer:
        """POST `body` to `path` (under the URL's own path) with `token` as its bearer."""
        return await self.send(
            f"{self._base_path}{path}", f"Authorization: Bearer {token}\r\n", body
        )

    async def send(self, target: str, headers: str, body: bytes) -> TwirpAnswer:
        """POST `body` to `target` (a path and query) with `headers` (lines ending in CRLF)."""
        request = self._request(target, headers, body)
        connection, reused = await self._acquire()
        try:
            return await self._exchange(connection, request)
        except _Closed as closed:
            if not reused or closed.answering:
                raise _unreachable(closed) from None
        # The server closed a kept-alive connection as the request went out: so may the others.
        self._close_idle()
        connection, _ = await self._acquire()
        try:
            return await self._exchange(connection, request)
        except _Closed as closed:
            raise _unreachable(closed) from None

    async def aclose(self) -> None:
        """Close every idle connection now and each busy one as its call ends; calls waiting for
        a connection, and every call from now on that would open one, fail at once."""
        self._closed = True
        self._close_idle()
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(Unreachable(CLOSED))

    def _request(self, target: str, headers: str, body: bytes) -> bytes:
        head = (
            f"POST {target} HTTP/1.1\r\n{self._fixed_headers}{headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    async def _exchange(self, connection: _Connection, request: bytes) -> TwirpAnswer:
        answered = False
        try:
            answer = await connection.send(request)
            answered = True
            return answer
        finally:
            self._give_back(connection, reusable=answered)

    async def _acquire(self) -> tuple[_Connection, bool]:
        """An idle connection (True: reused), else a new one while fewer than the most are open,
        else what is handed to this call after those that waited before it."""
        loop = asyncio.get_running_loop()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(loop.time()):
                return connection, True
            self._discard(connection)
        if self._open < self._max:
            self._open += 1  # its slot, taken before the connect yields to other calls
            return await self._connect(), False
        handed = await self._wait_for_a_connection(loop)
        if handed is not None:  # reused: one the server has closed since is sent once more
            return handed, True
        return await self._connect(), False  # the slot of a closed one

    async def _connect(self) -> _Connection:
        """A new connection in a slot `_open` already counts; the slot is passed on on failure."""
        try:
            if self._closed:  # a call that came after aclose, or was handed a slot before it
                raise Unreachable(CLOSED)
            _, connection = await asyncio.get_running_loop().create_connection(
                partial(_Connection, self._body_limit), self._host, self._port, ssl=self._tls,
                server_hostname=self._host if self._tls else None,
            )  # fmt: skip
        except BaseException as exc:
            self._release_slot()
            if isinstance(exc, OSError):
                raise Unreachable(why_unreachable(exc)) from exc
            raise
        return connection

    async def _wait_for_a_connection(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        if self._closed:
            raise Unreachable(CLOSED)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # handed one and cancelled at once: the next's
            elif waiter in self._waiters:  # a cancelled one may have been passed over already
                self._waiters.remove(waiter)
            raise

    def _give_back(self, connection: _Connection, reusable: bool) -> None:
        if not reusable or self._closed or not connection.usable(None):
            self._discard(connection)
        elif not self._hand_over(connection):
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)

    def _pass_on(self, handed: _Connection | None) -> None:
        if handed is None:
            self._release_slot()
        else:
            self._give_back(handed, reusable=True)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._release_slot()

    def _release_slot(self) -> None:
        """A connection closed, or none made: its slot goes to the longest waiting call, if any."""
        if not self._hand_over(None):
            self._open -= 1

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)

    def _hand_over(self, handed: _Connection | None) -> bool:
        """`handed` to the call that has waited longest, if any still waits (False: none)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        return False


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; answers parsed by httptools as they arrive."""

    def __init__(self, body_limit: int | None = None) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._body_limit = body_limit
        self._kept = 0  # bytes of this answer's body kept
        self._retry_after: bytes | None = None
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[TwirpAnswer] | None = None
        self._content_type = b""
        self._body: list[bytes] = []
        self._answering = False
        self._head_bytes = 0  # received of this answer before its head was whole
        self._in_head = True
        self._framed = False  # the answer's head gave its body a length (or chunks)
        self._body_to_eof = False  # a head without: the body runs to the connection's end
        self._lost = False
        self.idle_since = 0.0

    def usable(self, now: float | None) -> bool:
        if self._lost or self._transport is None or self._transport.is_closing():
            return False
        return now is None or now - self.idle_since < IDLE_S

    def send(self, request: bytes) -> asyncio.Future[TwirpAnswer]:
        assert self._transport is not None, "not connected"
        assert self._answer is None, "one request at a time"
        self._answer = answer = asyncio.get_running_loop().create_future()
        self._answering = False
        self._transport.write(request)
        return answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is None and self._body_to_eof and self._answer is not None:
            self.on_message_complete()  # what httptools cannot tell without an end of input
        self._fail(_Closed(self._answering))

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # nothing asked: not a server to keep talking to
            self.close()
            return
        self._answering = True
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES + len(data):  # what came before is head alone
                self._fail(NotHttp(f"its answer's head is over {MAX_HEAD_BYTES} bytes"))
                self.close()
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(NotHttp(str(exc)))
            self.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._content_type = value
        elif name == b"retry-after":
            self._retry_after = value
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        # An error page may run to the end of the connection (HTTP/1.0 proxies): its status is
        # still the answer. Never a 200, whose cut-off protobuf could parse as a shorter one.
        status = self._parser.get_status_code()
        self._in_head = False
        body_unused = self._body_limit is not None
        self._body_to_eof = not self._framed and (status >= 300 or body_unused) and status != 304

    def on_body(self, body: bytes) -> None:
        if self._body_limit is not None:
            body = body[: max(0, self._body_limit - self._kept)]
            self._kept += len(body)
        if body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the answer is still to come.
            self._begin_answer()
            return
        content_type = self._content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
        retry_after = None if self._retry_after is None else self._retry_after.decode("latin-1")
        answer = TwirpAnswer(status, content_type, b"".join(self._body), retry_after)
        if not self._parser.should_keep_alive():
            self.close()
        self._begin_answer()
        self._body_to_eof = False
        waiting, self._answer = self._answer, None
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    def _begin_answer(self) -> None:
        self._content_type, self._body, self._framed = b"", [], False
        self._kept, self._retry_after = 0, None
        self._in_head, self._head_bytes = True, 0

    def _fail(self, error: Exception) -> None:
        waiting, self._answer = self._answer, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(error)


def _unreachable(closed: _Closed) -> Unreachable:
    if closed.answering:
        return Unreachable("it closed the connection in the middle of its answer")
    return Unreachable("it closed the connection without answering")


def why_unreachable(exc: BaseException) -> str:
    """Why a connection failed, in words (an exception class says nothing to most)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or _errno(cause) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "its host name does not resolve"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed"
        cause = cause.__cause__
    return f"the connection failed ({type(exc).__name__})"


def _errno(error: BaseException) -> int | None:
    # asyncio reports a refused connect as a plain OSError when it tried several addresses.
    return error.errno if isinstance(error, OSError) else None
