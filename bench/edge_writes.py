"""Answers through the edge protocol (`ops.edge_protocol`) over a TCP connection on loopback, in one
process: CPU per answer (client and server both, the same client for every variant) and the
transport writes per answer. For changes to how the edge writes its answers (bench/README.md).

`python -m bench.edge_writes [--answers N] [--rounds R]`: keep-alive requests one after another,
each answered as the gateway answers (a head with Content-Length, then the body in one message).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.server import ServerState

from voice_gateway.ops.edge_events import EdgeEvents
from voice_gateway.ops.edge_protocol import EdgeLimits, edge_protocol
from voice_gateway.ops.metrics import Metrics

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nUser-Agent: bench\r\n\r\n"
BODY = b'{"session_id": "sess_0123456789", "token": "' + b"e" * 300 + b'"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"x-request-id", b"0123456789abcdef0123456789abcdef"),
    (b"cache-control", b"no-store"),
]
LIMITS = EdgeLimits(
    max_header_bytes=8192,
    header_read_timeout_s=10,
    body_read_timeout_s=10,
    max_connections=100,
    max_requests_in_flight=100,
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class Client(asyncio.Protocol):
    """Sends the next request once the whole answer of the last one is in."""

    def __init__(self, answer_size: int, answers: int, done: asyncio.Future[None]) -> None:
        self.answer_size, self.left, self.done = answer_size, answers, done
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received < self.answer_size:
            return
        self.received -= self.answer_size
        self.left -= 1
        if self.left:
            self.transport.write(REQUEST)
        elif not self.done.done():
            self.done.set_result(None)


class CountingWrites:
    """The server's transport with its writes counted (a proxy: uvloop's are read-only)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport, self.writes = transport, 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def one_round(answers: int, count_writes: bool = False) -> float:
    """CPU µs per answer, or (`count_writes`) the server's transport writes per answer."""
    loop = asyncio.get_running_loop()
    config = Config(
        app, ws="none", server_header=False, access_log=False, log_config=None, proxy_headers=False
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Wed, 02 Dec 2026 00:00:00 GMT")]
    protocol_class = edge_protocol(LIMITS, EdgeEvents(Metrics()))
    answer_size = await measure_answer_size(loop, protocol_class, config, state)
    server_sock, client_sock = loopback_pair()
    server_transport, server = await loop.connect_accepted_socket(
        lambda: protocol_class(config, state, {}, loop), server_sock
    )
    counting = CountingWrites(server.transport) if count_writes else None
    if counting:
        # read by each request's cycle as it is built
        server.transport = counting  # type: ignore[assignment]
    done: asyncio.Future[None] = loop.create_future()
    started = time.process_time()
    client_transport, _ = await loop.connect_accepted_socket(
        lambda: Client(answer_size, answers, done), client_sock
    )
    await done
    cpu_s = time.process_time() - started
    client_transport.close()
    server_transport.close()
    return counting.writes / answers if counting else cpu_s / answers * 1e6


async def measure_answer_size(
    loop: asyncio.AbstractEventLoop, protocol_class: Any, config: Config, state: ServerState
) -> int:
    """The bytes of one answer, read off a connection of its own that closes after it."""
    server_sock, client_sock = loopback_pair()
    await loop.connect_accepted_socket(lambda: protocol_class(config, state, {}, loop), server_sock)
    client_sock.setblocking(False)
    await loop.sock_sendall(
        client_sock, REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    received = b""
    while chunk := await loop.sock_recv(client_sock, 65536):
        received += chunk
    client_sock.close()
    return len(received) - len(b"connection: close\r\n")


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of one TCP connection on 127.0.0.1, as a client reaches `serve`."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    writes = uvloop.run(one_round(1000, count_writes=True))
    per_answer = [uvloop.run(one_round(args.answers)) for _ in range(args.rounds)]
    print(
        f"CPU per answer: median {statistics.median(per_answer):.2f} µs "
        f"(rounds: {', '.join(f'{cpu:.2f}' for cpu in per_answer)}); "
        f"server writes per answer: {writes:.2f}"
    )


if __name__ == "__main__":
    main()
