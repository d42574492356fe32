"""The in-flight bound over a real server (`ops.server.server_config`): past
VOICE_GATEWAY_MAX_REQUESTS_IN_FLIGHT a request gets 503 `overloaded` at once, before its body is
read or LiveKit is called; probes and scrapes are always served. That it sheds, not how fast."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from tests.support.gateway import make_settings
from tests.support.keys import SERVICE_KEY
from tests.support.live_gateway import live_gateway
from tests.support.raw_http import RawResponse, connect, parse_responses
from voice_gateway.standin import StandIn

BOUND = 2
BODY = b'{"user_id": "nate", "agent_id": "pm-agent", "session_duration_hours": 1}'
HEAD = (
    "POST /api/voice/session HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
    f"Authorization: Bearer {SERVICE_KEY}\r\nContent-Length: {len(BODY)}\r\n\r\n"
).encode()


@contextmanager
def bounded_gateway(standin: StandIn, **overrides: Any) -> Iterator[tuple[int, httpx.Client]]:
    settings = make_settings(
        standin, api_keys=[SERVICE_KEY], max_requests_in_flight=BOUND, **overrides
    )
    with live_gateway(settings) as (host, port), httpx.Client(timeout=10) as client:
        client.base_url = httpx.URL(f"http://{host}:{port}")
        yield port, client


def held_in_flight(stack: ExitStack, port: int, client: httpx.Client) -> None:
    """BOUND requests whose body never comes whole: each holds a request task."""
    for _ in range(BOUND):
        stack.enter_context(connect(port)).sendall(HEAD + BODY[:1])
    deadline = time.monotonic() + 10
    while _in_flight(client) < BOUND:  # the scrape itself is served too, and counted
        assert time.monotonic() < deadline, "the held requests never reached the app"
        time.sleep(0.02)


def _in_flight(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    line = next(ln for ln in text.splitlines() if ln.startswith("voice_gateway_http_requests_in"))
    return float(line.rsplit(" ", 1)[1]) - 1


def answer_to_head_only(sock: socket.socket) -> RawResponse:
    """Send a request's head and none of its body; the answer that still comes."""
    sock.sendall(HEAD)
    return read_answer(sock)


def read_answer(sock: socket.socket) -> RawResponse:
    received = b""
    while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
        received += sock.recv(65536)
    (answer,) = parse_responses(received)
    return answer


def test_a_request_past_the_bound_gets_503_overloaded_before_its_body_is_read(
    standin: StandIn,
) -> None:
    before = standin.requests_count("CreateRoom")
    with bounded_gateway(standin) as (port, client), ExitStack() as stack:
        held_in_flight(stack, port, client)
        with connect(port) as sock:
            answer = answer_to_head_only(sock)

    assert answer.status == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["x-request-id"]
    problem = json.loads(answer.body)
    assert problem["code"] == "overloaded"
    assert problem["request_id"] == answer.headers["x-request-id"]
    assert standin.requests_count("CreateRoom") == before


def test_a_shed_connection_stays_open_and_is_served_once_load_falls(standin: StandIn) -> None:
    with bounded_gateway(standin) as (port, client), connect(port) as sock:
        with ExitStack() as stack:
            held_in_flight(stack, port, client)
            assert answer_to_head_only(sock).status == 503
            sock.sendall(BODY)  # the shed request's body: read and dropped
        deadline = time.monotonic() + 10
        while _in_flight(client) > 0:  # the held requests end with their connections
            assert time.monotonic() < deadline, "the held requests did not end"
            time.sleep(0.02)
        sock.sendall(HEAD + BODY)
        created = read_answer(sock)

    assert created.status == 201


def test_probes_and_metrics_are_never_shed(standin: StandIn) -> None:
    with bounded_gateway(standin) as (port, client), ExitStack() as stack:
        held_in_flight(stack, port, client)
        statuses = [client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics")]
        shed = client.get("/metrics").text

    assert statuses == [200, 200, 200]
    assert "voice_gateway_requests_shed_total 0.0" in shed


def test_shed_requests_are_counted(standin: StandIn) -> None:
    with bounded_gateway(standin) as (port, client), ExitStack() as stack:
        held_in_flight(stack, port, client)
        for _ in range(3):
            with connect(port) as sock:
                assert answer_to_head_only(sock).status == 503
        text = client.get("/metrics").text

    assert "voice_gateway_requests_shed_total 3.0" in text


APP_ORIGIN = "https://app.example"


def shed_answer_to(sock: socket.socket, origin: str, keep_alive: bool = True) -> RawResponse:
    head = HEAD.replace(b"Host: gateway\r\n", f"Host: gateway\r\nOrigin: {origin}\r\n".encode())
    if not keep_alive:
        head = head.replace(b"Host: gateway\r\n", b"Host: gateway\r\nConnection: close\r\n")
    sock.sendall(head)
    return read_answer(sock)


def test_a_shed_answer_to_an_allowed_origin_carries_cors_so_its_script_can_read_it(
    standin: StandIn,
) -> None:
    # Without them a browser's fetch saw a network error, not the 503 and its Retry-After.
    with bounded_gateway(standin, cors_origins=[APP_ORIGIN]) as (port, client), ExitStack() as st:
        held_in_flight(st, port, client)
        with connect(port) as allowed, connect(port) as closing, connect(port) as other:
            answers = (
                shed_answer_to(allowed, APP_ORIGIN),
                shed_answer_to(closing, APP_ORIGIN, keep_alive=False),
            )
            stranger = shed_answer_to(other, "https://evil.example")

    for answer in answers:
        assert answer.status == 503
        assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "Retry-After" in answer.headers["access-control-expose-headers"]
        assert answer.headers["vary"] == "Origin"
        assert json.loads(answer.body)["request_id"] == answer.headers["x-request-id"]
    assert stranger.status == 503
    assert "access-control-allow-origin" not in stranger.headers


def test_an_allowed_origins_preflight_is_served_past_the_bound_so_its_page_reads_the_503(
    standin: StandIn,
) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    with bounded_gateway(standin, cors_origins=[APP_ORIGIN]) as (port, client), ExitStack() as st:
        held_in_flight(st, port, client)
        allowed = client.options("/api/voice/session", headers=preflight | {"Origin": APP_ORIGIN})
        other = client.options("/api/voice/session", headers=preflight | {"Origin": "https://x"})
        plain = client.options("/api/voice/session", headers={"Origin": APP_ORIGIN})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert (other.status_code, plain.status_code) == (503, 503)  # not preflights of an allowed one
