"""The gateway's listening sockets, read by the event loop itself: every connection waiting in the
kernel's accept queue is accepted each time the socket is readable.

uvloop's own servers accept one connection per poll (libuv >= 1.45, libuv/libuv#3696), and under
load one pass of the loop takes ~100 ms: with 1000 clients, 350-1,300 connections waited in the
accept queue for seconds, a probe's new connection among them (p99 3.4-4.2 s, bench `overload`).
Accepting all that wait (up to the backlog) per wake-up, as asyncio's own selector loop does, took
that p99 to ~365 ms (bench/README.md, measured decisions). Each accepted socket becomes a transport
of the loop's own kind through `connect_accepted_socket`, so uvloop still carries the traffic.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from functools import partial

logger = logging.getLogger("voice_gateway.server")  # pinned: logs know it by this name
# How long accepting pauses after accept() failed (out of file descriptors, say): the socket
# stays readable, so trying on the next pass would spin the loop and log on every pass. asyncio's
# own servers pause as long (asyncio.constants.ACCEPT_RETRY_DELAY).
ACCEPT_RETRY_S = 1.0

ProtocolFactory = Callable[[], asyncio.Protocol]


def bind_listeners(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for every address `host` names (as `loop.create_server` binds them);
    OSError when one cannot be bound (the port is taken)."""
    listeners: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            listener = socket.socket(family, kind, proto)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(backlog)
    except OSError:
        for listener in listeners:
            listener.close()
        raise
    return listeners


class EagerListener:
    """One listening socket served on `loop`; `close` stops accepting and closes it (what uvicorn
    calls on its servers at shutdown)."""

    def __init__(
        self,
        listener: socket.socket,
        protocol_factory: ProtocolFactory,
        loop: asyncio.AbstractEventLoop,
        most_per_wake: int,
    ) -> None:
        self._listener = listener
        self._protocol_factory = protocol_factory
        self._loop = loop
        self._most_per_wake = most_per_wake
        self._opening: set[asyncio.Task[object]] = set()  # held: the loop keeps only weak refs
        listener.setblocking(False)
        loop.add_reader(listener.fileno(), self._accept_waiting)

    def close(self) -> None:
        if self._listener.fileno() >= 0:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()

    async def wait_closed(self) -> None:
        """Once closed: the connections accepted before are open (or failed to open)."""
        await asyncio.gather(*self._opening, return_exceptions=True)

    def _accept_waiting(self) -> None:
        for _ in range(self._most_per_wake):
            try:
                connection, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as exc:  # out of file descriptors, say: the queue waits meanwhile
                logger.warning(
                    "could not accept a connection: %s; trying again in %g s", exc, ACCEPT_RETRY_S
                )
                self._loop.remove_reader(self._listener.fileno())
                self._loop.call_later(ACCEPT_RETRY_S, self._resume)
                return
            self._open(connection)

    def _resume(self) -> None:
        if self._listener.fileno() >= 0:  # not closed meanwhile
            self._loop.add_reader(self._listener.fileno(), self._accept_waiting)

    def _open(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as servers do: TCP only
        opening = self._loop.create_task(
            self._loop.connect_accepted_socket(self._protocol_factory, connection)
        )
        self._opening.add(opening)
        opening.add_done_callback(partial(self._opened, connection))

    def _opened(self, connection: socket.socket, opening: asyncio.Task[object]) -> None:
        self._opening.discard(opening)
        if not opening.cancelled() and opening.exception() is None:
            return
        connection.close()  # no transport took it: nothing else would close it
        if not opening.cancelled():
            logger.warning("an accepted connection could not be opened: %r", opening.exception())
