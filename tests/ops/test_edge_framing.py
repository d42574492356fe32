"""Answers of every framing through the edge protocol, over real sockets to a real uvicorn (in a
thread): keep-alive, pipelining, HEAD, 204, Connection: close, and streamed bodies whose head
and first part reach the client before the rest is sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.support.edge import ROOMY_LIMITS as LIMITS
from tests.support.processes import bound_listener
from tests.support.raw_http import connect, parse_responses, read_until_closed, request
from voice_gateway.ops.edge_events import EdgeEvents
from voice_gateway.ops.edge_protocol import edge_protocol
from voice_gateway.ops.metrics import Metrics

BODY = b'{"session_id": "sess_1"}'
LENGTH = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
released = threading.Event()  # lets a streaming answer send its last part


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers, parts = ANSWERS[scope["path"]]
    await send({"type": "http.response.start", "status": STATUS[scope["path"]], "headers": headers})
    for part in parts[:-1]:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    if scope["path"] in STREAMED:
        await asyncio.to_thread(released.wait, 10)
    await send({"type": "http.response.body", "body": parts[-1]})


ANSWERS: dict[str, tuple[list[tuple[bytes, bytes]], list[bytes]]] = {
    "/length": (LENGTH, [BODY]),
    "/no-content": ([], [b""]),
    "/closing": ([*LENGTH, (b"connection", b"close")], [BODY]),
    "/stream": ([(b"content-type", b"text/plain")], [b"first", b"last"]),
    "/parts": ([(b"content-length", b"9")], [b"first", b"last"]),
}
STATUS = {**dict.fromkeys(ANSWERS, 200), "/no-content": 204}
STREAMED = {"/stream", "/parts"}  # their last part waits for `released`


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    listener = bound_listener()
    config = uvicorn.Config(
        app,
        http=edge_protocol(LIMITS, EdgeEvents(Metrics())),
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 20 s"
        time.sleep(0.02)
    yield int(listener.getsockname()[1])
    server.should_exit = True
    thread.join(timeout=20)
    listener.close()


@pytest.fixture(autouse=True)
def _unreleased() -> None:
    released.clear()


CLOSE = {"Connection": "close"}


def test_answers_one_after_another_share_a_kept_alive_connection(port: int) -> None:
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(request("GET", "/length"))
            received = b""
            while not received.endswith(BODY):
                received += sock.recv(65536)
            (answer,) = parse_responses(received)
            assert answer.status == 200
            assert answer.body == BODY


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    pipelined = [request("GET", "/length"), request("GET", "/no-content")]
    with connect(port) as sock:
        sock.sendall(b"".join([*pipelined, request("GET", "/length", headers=CLOSE)]))
        answers = parse_responses(read_until_closed(sock))

    assert [answer.status for answer in answers] == [200, 204, 200]
    assert [answer.body for answer in answers] == [BODY, b"", BODY]


def test_a_head_answer_has_the_length_and_no_body(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("HEAD", "/length") + request("GET", "/length", headers=CLOSE))
        received = read_until_closed(sock)

    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: %d" % len(BODY) in head
    (after,) = parse_responses(rest)  # the next answer begins right after the head
    assert after.body == BODY


def test_a_204_has_no_body_and_no_framing(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("GET", "/no-content", headers=CLOSE))
        received = read_until_closed(sock)

    assert received.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert received.endswith(b"connection: close\r\n\r\n")
    assert b"transfer-encoding" not in received


def test_an_app_that_says_close_has_its_connection_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("GET", "/closing") + request("GET", "/length"))
        answers = parse_responses(read_until_closed(sock))  # the server closed it

    assert [answer.headers["connection"] for answer in answers] == ["close"]


def test_a_client_that_says_close_has_its_connection_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("GET", "/length", headers=CLOSE))
        (answer,) = parse_responses(read_until_closed(sock))

    assert answer.headers["connection"] == "close"
    assert answer.body == BODY


@pytest.mark.parametrize(("path", "framing"), [("/stream", "chunked"), ("/parts", "length")])
def test_a_streamed_answer_reaches_the_client_before_its_end(
    port: int, path: str, framing: str
) -> None:
    with httpx.stream("GET", f"http://127.0.0.1:{port}{path}", timeout=10) as streamed:
        chunks = streamed.iter_raw()
        first = next(chunks)  # the app has not sent its last part yet
        released.set()
        rest = b"".join(chunks)

    assert ("transfer-encoding" in streamed.headers) == (framing == "chunked")
    assert (first, rest) == (b"first", b"last")
