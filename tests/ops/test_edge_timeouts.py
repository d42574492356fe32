"""Slow and silent clients, over a real `voice-gateway serve` with one-second read deadlines: a
connection that sends nothing is closed, a head or body that does not arrive whole gets 408."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.gateway import SESSION_BODY
from tests.support.processes import AUTH, Gateway, serving
from tests.support.raw_http import connect, parse_responses, read_until_closed, request
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

TIMEOUT_S = 1.0
# Generous: the deadline passes at 1 s; a loaded machine may take longer to close.
CLOSED_WITHIN_S = 8.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Gateway]:
    settings = {
        "VOICE_GATEWAY_HEADER_READ_TIMEOUT_S": str(TIMEOUT_S),
        "VOICE_GATEWAY_BODY_READ_TIMEOUT_S": str(TIMEOUT_S),
    }
    with serving(tmp_path_factory.mktemp("timeouts"), standin, **settings) as gateway:
        yield gateway
        gateway.stop()


def closed_after(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    sock.settimeout(CLOSED_WITHIN_S)
    return read_until_closed(sock), time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(gateway: Gateway) -> None:
    with connect(gateway.port) as sock:
        answer, waited_s = closed_after(sock)

    assert answer == b""
    assert waited_s >= TIMEOUT_S * 0.5


def test_a_head_sent_a_byte_at_a_time_gets_408(gateway: Gateway) -> None:
    head = request("GET", "/healthz")
    with connect(gateway.port) as sock:
        for byte in head[:20]:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
        answer, _ = closed_after(sock)

    (timed_out,) = parse_responses(answer)
    assert timed_out.status == 408
    assert timed_out.json()["code"] == "request_timeout"


def test_a_body_shorter_than_declared_gets_408(gateway: Gateway) -> None:
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": "500"}
    with connect(gateway.port) as sock:
        sock.sendall(request("POST", "/api/voice/session", b"x" * 67, headers))
        answer, _ = closed_after(sock)

    (timed_out,) = parse_responses(answer)
    assert timed_out.status == 408
    assert timed_out.headers["content-type"] == "application/problem+json"


def test_the_abandoned_body_is_logged_as_a_client_hang_up_not_a_bug(gateway: Gateway) -> None:
    headers = {**AUTH, "Content-Length": "500", "X-Request-ID": "abandoned-body"}
    with connect(gateway.port) as sock:
        sock.sendall(request("POST", "/api/voice/session", b"{", headers))
        closed_after(sock)
    time.sleep(0.5)  # the log thread writes in batches

    lines = [line for line in gateway.log_lines() if line.get("request_id") == "abandoned-body"]
    assert [line["status"] for line in lines if "status" in line] == [499]
    assert not any(line["level"] == "error" or "exception" in line for line in lines)


def test_a_slow_request_that_arrives_in_time_is_served(gateway: Gateway) -> None:
    body = str(SESSION_BODY).encode()
    headers = {**AUTH, "Connection": "close", "Content-Length": str(len(body))}
    with connect(gateway.port) as sock:
        sock.sendall(request("POST", "/healthz", headers=headers)[:-4])
        time.sleep(TIMEOUT_S / 2)
        sock.sendall(b"\r\n\r\n" + body)
        answer, _ = closed_after(sock)

    assert parse_responses(answer)[0].status == 405  # read whole, and answered by the app
