"""The edge protocol writes each answer framed by Content-Length in one transport write, and puts
on the wire exactly the bytes uvicorn's own httptools protocol puts there, for every kind of
answer: the same app, the same request bytes, through both protocols over a recording
transport (in process, on the test's loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tests.support.edge import ROOMY_LIMITS as LIMITS
from voice_gateway.ops.edge_cycle import EdgeCycle
from voice_gateway.ops.edge_events import EdgeEvents
from voice_gateway.ops.edge_protocol import edge_protocol
from voice_gateway.ops.metrics import Metrics

Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[dict[str, Any], Any, Send], Awaitable[None]]
BODY = b'{"session_id": "sess_1"}'
JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


class RecordingTransport(asyncio.Transport):
    """Records what is written and whether it was closed; reads are not needed here."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def answer(*messages: dict[str, Any], fail: bool = False) -> App:
    """An app that sends these messages, then (with `fail`) raises."""

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        for message in messages:
            await send(message)
        if fail:
            raise RuntimeError("the app broke off")

    return app


def start(status: int = 201, headers: list[tuple[bytes, bytes]] = JSON_HEADERS) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes = BODY, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def connection(
    protocol_class: type[HttpToolsProtocol], app: App, access_log: bool = True
) -> tuple[HttpToolsProtocol, RecordingTransport, ServerState]:
    loop = asyncio.get_running_loop()
    config = Config(app, ws="none", lifespan="off", proxy_headers=False, log_config=None)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Wed, 02 Dec 2026 00:00:00 GMT")]
    protocol = protocol_class(config, state, {}, loop)
    protocol.access_log = access_log  # uvicorn's line ("uvicorn.access"): off in `serve`
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def settled(state: ServerState) -> None:
    """Until every request task of the connection has ended."""
    for _ in range(100):
        await asyncio.sleep(0)
        if not state.tasks:
            return


async def served(
    protocol_class: type[HttpToolsProtocol], app: App, request: bytes, access_log: bool = True
) -> RecordingTransport:
    """`request` fed to a new connection of `protocol_class`; the transport once answered."""
    protocol, transport, state = connection(protocol_class, app, access_log)
    protocol.data_received(request)
    await settled(state)
    closed_by_server = transport.closed
    protocol.connection_lost(None)  # which closes it too: ends the keep-alive timer
    transport.closed = closed_by_server
    return transport


def edge() -> type[HttpToolsProtocol]:
    return edge_protocol(LIMITS, EdgeEvents(Metrics()))


GET = b"GET /x HTTP/1.1\r\nHost: gateway\r\n\r\n"
HEAD = b"HEAD /x HTTP/1.1\r\nHost: gateway\r\n\r\n"
CLOSE = b"GET /x HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
HTTP_10 = b"GET /x HTTP/1.0\r\nHost: gateway\r\n\r\n"
ANSWERS: dict[str, tuple[App, bytes]] = {
    "content-length": (answer(start(), body()), GET),
    "empty body": (answer(start(headers=[(b"content-length", b"0")]), body(b"")), GET),
    "pipelined": (answer(start(), body()), GET + GET + CLOSE),
    "HEAD": (answer(start(), body()), HEAD),
    "HEAD, body in parts": (answer(start(), body(BODY[:5], True), body(BODY[5:])), HEAD),
    "204": (answer(start(204, []), body(b"")), GET),
    "304": (answer(start(304, [(b"etag", b'"1"')]), body(b"")), GET),
    "chunked": (answer(start(200, []), body(b"a", more=True), body(b"bc")), GET),
    "chunked, empty end": (answer(start(200, []), body(b"a", more=True), body(b"")), GET),
    "content-length in parts": (answer(start(), body(BODY[:5], True), body(BODY[5:])), GET),
    "app says close": (
        answer(start(headers=[*JSON_HEADERS, (b"connection", b"Close")]), body()),
        GET,
    ),
    "app says close, chunked": (answer(start(headers=[(b"connection", b"close")]), body()), GET),
    "client says close": (answer(start(), body()), CLOSE),
    "HTTP/1.0": (answer(start(), body()), HTTP_10),
    "fails before start: 500": (answer(fail=True), GET),
    "fails after start": (answer(start(), fail=True), GET),
    "fails mid-body": (answer(start(), body(BODY[:5], more=True), fail=True), GET),
    "ends after start": (answer(start()), GET),
    "body too long": (answer(start(headers=[(b"content-length", b"1")]), body()), GET),
    "body too short": (answer(start(headers=[(b"content-length", b"99")]), body()), GET),
    "app says chunked": (answer(start(200, [(b"transfer-encoding", b"chunked")]), body()), GET),
    "a space in a header name": (answer(start(headers=[(b"x a", b"1")]), body()), GET),
    "CRLF in a header value": (answer(start(headers=[(b"x-a", b"1\r\nx-b: 2")]), body()), GET),
    "body before start": (answer(body()), GET),
    "start twice": (answer(start(), start()), GET),
    "sent after the end": (answer(start(), body(), body()), GET),
}


@pytest.mark.parametrize("access_log", [True, False], ids=["logged", "unlogged"])
@pytest.mark.parametrize("name", ANSWERS)
async def test_the_edge_writes_what_uvicorn_writes(name: str, access_log: bool) -> None:
    app, request = ANSWERS[name]

    uvicorn_wrote = await served(HttpToolsProtocol, app, request, access_log)
    edge_wrote = await served(edge(), app, request, access_log)

    assert b"".join(edge_wrote.writes) == b"".join(uvicorn_wrote.writes)
    assert edge_wrote.closed == uvicorn_wrote.closed


@pytest.mark.parametrize(
    ("name", "answers"),
    [("content-length", 1), ("empty body", 1), ("HEAD", 1), ("pipelined", 3), ("204", 1)],
)
async def test_an_answer_known_whole_at_its_start_is_one_write(name: str, answers: int) -> None:
    app, request = ANSWERS[name]

    wrote = await served(edge(), app, request)

    assert len(wrote.writes) == answers
    assert all(write.startswith(b"HTTP/1.1 ") for write in wrote.writes)


async def test_a_chunked_answer_writes_its_head_at_its_start() -> None:
    wrote = await served(edge(), ANSWERS["chunked"][0], GET)

    assert wrote.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert len(wrote.writes) == 3


async def test_an_answer_waits_while_the_client_is_not_reading() -> None:
    protocol, transport, state = connection(edge(), ANSWERS["content-length"][0])
    protocol.pause_writing()  # the transport's buffer is full

    protocol.data_received(GET)
    await settled(state)
    held = list(transport.writes)
    protocol.resume_writing()
    await settled(state)

    assert held == []
    assert len(transport.writes) == 1
    protocol.connection_lost(None)


async def test_a_client_gone_between_head_and_body_is_sent_nothing() -> None:
    # The one difference from uvicorn: it had sent the head before the client went.
    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        await send(start())
        while (await receive())["type"] != "http.disconnect":
            pass
        await send(body())

    protocol, transport, state = connection(edge(), app)
    protocol.data_received(GET)
    await settled(state)
    protocol.connection_lost(None)
    await settled(state)

    assert transport.writes == []
    assert not state.tasks  # the app ended without an error


def test_uvicorn_still_builds_its_cycle_by_the_name_the_edge_replaces() -> None:
    # The edge's on_headers_complete is uvicorn's, reading this name as EdgeCycle.
    assert "RequestResponseCycle" in HttpToolsProtocol.on_headers_complete.__code__.co_names
    assert issubclass(
        EdgeCycle, HttpToolsProtocol.on_headers_complete.__globals__["RequestResponseCycle"]
    )
