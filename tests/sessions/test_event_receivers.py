"""How the gateway reaches the app's event receivers (sessions/receivers.py, over the gateway's own
connection pool): what goes on the wire, and what a receiver that is down, silent, not HTTP or
too talkative makes of the delivery. Real servers on loopback; the gateway over HTTP."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.event_gateway import gateway
from tests.support.event_receiver import EVENTS_SECRET
from tests.support.gateway import create_session, metric
from tests.support.polling import poll_until, wait_until
from tests.support.processes import free_port
from voice_gateway.livekit.twirp_pool import NotHttp
from voice_gateway.sessions.receivers import BODY_KEPT, Receivers
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]
# Request line, headers (lower-case names), body, and each header's name as sent.
Head = tuple[str, dict[str, str], bytes, list[str]]
SERVICE_UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"


async def no_content(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")


@asynccontextmanager
async def raw_receiver(answer: Answer) -> AsyncIterator[tuple[str, list[Head], list[int]]]:
    """A server on loopback answering each request by `answer`: its origin, the requests it
    read, and per connection 1 while it is open, 0 once the gateway closed it."""
    requests: list[Head] = []
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        number = len(connections) - 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                fields = [h.partition(": ") for h in head[1:] if h]
                headers = {name.lower(): value for name, _, value in fields}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                requests.append((head[0], headers, body, [name.lower() for name, _, _ in fields]))
                await answer(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            connections[number] = 0
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", requests, connections
    finally:
        server.close()


async def test_an_event_goes_to_the_urls_path_and_query_with_its_user_info_as_basic_credentials(
    standin: StandIn,
) -> None:
    async with raw_receiver(no_content) as (origin, requests, _):
        url = origin.replace("http://", "http://app:s%3Acret@") + "/hooks/ä?token=own-secret"
        async with gateway(standin, url) as client:
            await create_session(client)
            await wait_until(lambda: len(requests) == 1)

    line, headers, body, names = requests[0]
    assert sorted(names) == sorted(set(names))  # each once: not two Content-Types
    assert line == "POST /hooks/%C3%A4?token=own-secret HTTP/1.1"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"app:s:cret").decode()
    assert headers["content-type"] == "application/json"
    assert headers["host"] == origin.removeprefix("http://")
    payload = Webhook(EVENTS_SECRET).verify(body, headers)
    assert payload["type"] == "session.created"


async def test_a_receivers_answer_is_kept_only_in_part_and_its_connection_is_reused() -> None:
    async def talkative(writer: asyncio.StreamWriter) -> None:
        chunk = b"x" * 65536
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(64):  # 4 MiB
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        writer.write(b"0\r\n\r\n")

    receivers = Receivers(4)
    async with raw_receiver(talkative) as (origin, requests, connections):
        try:
            answers = [await receivers.post(origin + "/e", {}, b"{}") for _ in range(2)]
        finally:
            await receivers.aclose()

    assert [(a.status, len(a.body)) for a in answers] == [(200, BODY_KEPT)] * 2
    assert (len(requests), len(connections)) == (2, 1)


async def _the_dead_letter(standin: StandIn, url: str, caplog: pytest.LogCaptureFixture) -> str:
    caplog.set_level(logging.ERROR, "voice_gateway.events")
    async with gateway(standin, url, events_retry_for_s=1.0, events_timeout_s=0.3) as client:
        answer = await create_session(client)
        dead = 'voice_gateway_events_total{outcome="dead"'
        await poll_until(lambda: metric(client, dead), timeout_s=10, interval_s=0.1)
    assert answer.status_code == 201
    [line] = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    return line


async def test_a_receiver_that_refuses_connections_is_retried_then_dead_lettered_saying_so(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    line = await _the_dead_letter(standin, f"http://127.0.0.1:{free_port()}/e", caplog)

    assert line.endswith(": connection refused")


async def test_a_receiver_that_never_answers_is_given_up_on_after_the_timeout(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with raw_receiver(silent) as (origin, requests, connections):
        line = await _the_dead_letter(standin, origin + "/e", caplog)

    assert line.endswith(": no answer within 0.3 s")
    assert len(requests) >= 2  # tried again
    assert len(connections) == len(requests)  # each on a connection of its own


async def test_a_receiver_that_does_not_speak_http_is_dead_lettered_saying_so(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async def not_http(writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")

    async with raw_receiver(not_http) as (origin, _, _):
        line = await _the_dead_letter(standin, origin + "/e", caplog)

    assert line.endswith(": what answers does not speak HTTP")


async def test_an_answer_that_ends_by_closing_is_taken_once(standin: StandIn) -> None:
    # As Python's http.server answers by default (HTTP/1.0, no Content-Length).
    async def then_close(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthanks")
        await writer.drain()
        writer.close()

    delivered = 'voice_gateway_events_total{outcome="delivered"'
    async with (
        raw_receiver(then_close) as (origin, requests, _),
        gateway(standin, origin + "/e") as client,
    ):
        await create_session(client)
        assert await poll_until(lambda: metric(client, delivered), timeout_s=5) == 1
        await anyio.sleep(0.5)  # a retry, if any, would come within it
        retried = await metric(client, 'voice_gateway_events_total{outcome="retried"')

    assert (len(requests), retried) == (1, 0)


async def test_the_receivers_connections_are_closed_when_the_gateway_stops(
    standin: StandIn,
) -> None:
    async with raw_receiver(no_content) as (origin, requests, connections):
        async with gateway(standin, origin + "/e") as client:
            await create_session(client)
            await wait_until(lambda: len(requests) == 1)
            assert connections == [1]  # kept alive
        await wait_until(lambda: connections == [0], timeout_s=2)


async def test_an_interim_answer_is_skipped_and_a_retry_after_belongs_to_its_own_answer() -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
        b"Content-Length: 2000\r\n\r\n" + b"x" * 2000,
        SERVICE_UNAVAILABLE + b"\r\n",
    ]

    async def scripted(writer: asyncio.StreamWriter) -> None:
        writer.write(answers.pop(0))

    receivers = Receivers(4)
    async with raw_receiver(scripted) as (origin, _, connections):
        try:
            first, second = [await receivers.post(origin + "/e", {}, b"{}") for _ in range(2)]
        finally:
            await receivers.aclose()

    assert (first.status, first.retry_after, len(first.body)) == (503, "7", BODY_KEPT)
    assert (second.status, second.retry_after) == (503, None)
    assert len(connections) == 1


async def test_an_answer_whose_head_does_not_end_is_not_http() -> None:
    async def endless_header(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Filler: ")
        for _ in range(64):
            writer.write(b"y" * 4096)
            await writer.drain()

    receivers = Receivers(4)
    async with raw_receiver(endless_header) as (origin, _, _):
        try:
            with pytest.raises(NotHttp, match="head is over 65536 bytes"):
                await receivers.post(origin + "/e", {}, b"{}")
        finally:
            await receivers.aclose()
