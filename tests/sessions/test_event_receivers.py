"""How the gateway reaches the app's event receivers (sessions/receivers.py, over the gateway's own
connection pool): what goes on the wire, and what a receiver that is down, silent, not HTTP or
too talkative makes of the delivery. Real servers on loopback; the gateway over HTTP."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.event_gateway import gateway
from tests.support.event_receiver import EVENTS_SECRET
from tests.support.gateway import create_session, metric
from tests.support.polling import poll_until, wait_until
from tests.support.processes import free_port
from voice_gateway.sessions.receivers import BODY_KEPT, Receivers
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.usefixtures("webhooks_off_afterwards")

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]
Head = tuple[str, dict[str, str], bytes]  # request line, headers (lower-case names), body


async def no_content(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")


@asynccontextmanager
async def raw_receiver(answer: Answer) -> AsyncIterator[tuple[str, list[Head], list[int]]]:
    """A server on loopback answering each request by `answer`: its origin, the requests it
    read, and one entry per connection."""
    requests: list[Head] = []
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {k.lower(): v for k, _, v in (h.partition(": ") for h in head[1:] if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                requests.append((head[0], headers, body))
                await answer(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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

    line, headers, body = requests[0]
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

    async with raw_receiver(silent) as (origin, requests, _):
        line = await _the_dead_letter(standin, origin + "/e", caplog)

    assert line.endswith(": no answer within 0.3 s")
    assert len(requests) >= 2  # tried again, each on a connection of its own


async def test_a_receiver_that_does_not_speak_http_is_dead_lettered_saying_so(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async def not_http(writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")

    async with raw_receiver(not_http) as (origin, _, _):
        line = await _the_dead_letter(standin, origin + "/e", caplog)

    assert line.endswith(": what answers does not speak HTTP")
