"""The gateway's own connection pool to LiveKit (livekit/twirp_pool.py), against real servers on
loopback that behave as no stand-in does: TLS with a CA of the test's own, a server closing kept-
alive connections as the next request arrives, one holding its answers, one that is not HTTP, one
closing mid-answer. Each is seen through the gateway's HTTP API, or the pool's own where only it
can show (the Host header, a cancellation timed against an answer)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from livekit import api

from tests.support.gateway import create_session, make_settings_for, running_gateway
from tests.support.polling import wait_until
from voice_gateway.livekit import twirp_pool
from voice_gateway.livekit.twirp_pool import TwirpPool

# What the server does with each request: (its writer, the request's number on this connection,
# the CreateRoomRequest) -> whether to keep the connection open.
Behaviour = Callable[[asyncio.StreamWriter, int, api.CreateRoomRequest], Awaitable[bool]]


@dataclass
class Seen:
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    deletes_answered: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)  # (connection, method)

    def creates(self) -> list[int]:
        """The connections CreateRoom requests came on, in order."""
        return [connection for connection, method in self.requests if method == "CreateRoom"]


async def answer_room(
    writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
) -> bool:
    body = api.Room(name=ask.name, sid="RM_" + ask.name[-8:]).SerializeToString()
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n"
    writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    return True


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    return lines[0], body


@asynccontextmanager
async def livekit_like(
    behaviour: Behaviour, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Seen]]:
    """A server on loopback answering Twirp POSTs by `behaviour`; its URL and what it saw."""
    seen = Seen()
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:
            handlers.add(task)
        seen.connections += 1
        connection = seen.connections
        seen.open_now += 1
        seen.most_open = max(seen.most_open, seen.open_now)
        try:
            number = 0
            while request := await read_request(reader):
                number += 1
                seen.requests.append((connection, request[0].split(" ")[1].rsplit("/", 1)[1]))
                ask = api.CreateRoomRequest.FromString(request[1])
                if not await behaviour(writer, number, ask):
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            seen.open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://localhost:{port}", seen
    finally:
        server.close()
        # Connections still held (a hung answer) close with this test's loop, not in a later one.
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


async def test_livekit_over_tls_with_a_trusted_ca_is_used(
    ca: trustme.CA, server_tls: ssl.SSLContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # what an operator with a private CA sets
    async with (
        livekit_like(answer_room, server_tls) as (url, seen),
        running_gateway(make_settings_for(url.replace("https", "wss"))) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 201, response.text
    assert seen.requests == [(1, "CreateRoom")]


async def test_livekit_over_tls_with_an_unknown_ca_is_a_503_saying_so(
    server_tls: ssl.SSLContext,
) -> None:
    async with (
        livekit_like(answer_room, server_tls) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 503
    assert response.json()["code"] == "livekit_unavailable"
    assert "TLS handshake failed" in response.json()["detail"]
    assert seen.requests == []


async def test_a_kept_alive_connection_closed_as_a_request_goes_out_is_retried_on_a_new_one() -> (
    None
):
    async def one_answer_per_connection(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        # Closes, without a word, once a second request arrives on a kept-alive connection.
        return number == 1 and await answer_room(writer, number, ask)

    async with (
        livekit_like(one_answer_per_connection) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        first = await create_session(client)
        second = await create_session(client)
        third = await create_session(client)

    assert [first.status_code, second.status_code, third.status_code] == [201, 201, 201]
    # Each later create: once on the kept-alive connection, which closes, then on a new one.
    assert seen.creates() == [1, 1, 2, 2, 3]


async def test_no_more_connections_are_opened_than_the_setting_allows() -> None:
    async def slowly(writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest) -> bool:
        await asyncio.sleep(0.2)
        return await answer_room(writer, number, ask)

    async with (
        livekit_like(slowly) as (url, seen),
        running_gateway(make_settings_for(url, livekit_max_connections=2)) as client,
    ):
        responses = await asyncio.gather(*(create_session(client) for _ in range(6)))

    assert [response.status_code for response in responses] == [201] * 6
    assert seen.most_open == 2
    assert seen.connections == 2  # given back and reused, not closed and opened anew


async def test_a_server_that_does_not_speak_http_is_a_502() -> None:
    async def not_http(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        return True

    async with (
        livekit_like(not_http) as (url, _),
        running_gateway(make_settings_for(url)) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_error"
    assert "does not speak HTTP" in response.json()["detail"]


async def test_a_server_switching_protocols_is_a_502() -> None:
    async def switching(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        await writer.drain()
        return True

    async with (
        livekit_like(switching) as (url, _),
        running_gateway(make_settings_for(url)) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 502, response.text
    assert response.json()["code"] == "livekit_error"
    assert "HTTP 101" in response.json()["detail"]


async def test_a_connection_closed_in_the_middle_of_an_answer_is_a_503_and_not_retried() -> None:
    async def half_an_answer(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n")
        writer.write(b"Content-Length: 100\r\n\r\nabc")
        await writer.drain()
        return False

    async with (
        livekit_like(half_an_answer) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 503
    assert "in the middle of its answer" in response.json()["detail"]
    assert seen.creates() == [1]  # an answer was coming: not sent again


async def test_a_deadline_mid_answer_closes_that_connection_and_the_next_call_gets_a_new_one() -> (
    None
):
    hung: list[str] = []

    async def the_first_hangs(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        if not hung:
            hung.append(ask.name)
            await asyncio.sleep(3)  # answers late, after the gateway gave up on it
        return await answer_room(writer, number, ask)

    async with (
        livekit_like(the_first_hangs) as (url, seen),
        running_gateway(make_settings_for(url, livekit_timeout_s=0.3)) as client,
    ):
        first = await create_session(client)
        second = await create_session(client)

    assert first.status_code == 504
    # Not on the first's connection, where the late answer for the first room would come.
    assert second.status_code == 201, second.text
    assert seen.creates() == [1, seen.creates()[1]]
    assert seen.creates()[1] != 1


async def test_an_answer_saying_connection_close_is_not_reused_or_retried() -> None:
    async def closing(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        body = api.Room(name=ask.name, sid="RM_closing").SerializeToString()
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\nConnection: close\r\n"
        writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        return False

    async with (
        livekit_like(closing) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        statuses = [(await create_session(client)).status_code for _ in range(2)]

    assert statuses == [201, 201]
    assert seen.creates() == [1, 2]


async def test_a_connection_idle_too_long_is_closed_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(twirp_pool, "IDLE_S", 0.05)
    async with (
        livekit_like(answer_room) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        first = await create_session(client)
        await asyncio.sleep(0.2)
        second = await create_session(client)

    assert (first.status_code, second.status_code) == (201, 201)
    assert seen.creates() == [1, 2]  # a new connection at once, not a failed try on the old


async def test_a_server_closing_without_answering_is_a_503_after_one_more_try() -> None:
    answering = [True]

    async def then_silent(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        return answering[0] and await answer_room(writer, number, ask)

    async with (
        livekit_like(then_silent) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        first = await create_session(client)
        answering[0] = False
        second = await create_session(client)

    assert first.status_code == 201
    assert second.status_code == 503
    assert "closed the connection without answering" in second.json()["detail"]
    assert seen.creates() == [1, 1, 2]  # the kept-alive connection, then one new one: no more


async def test_calls_waiting_for_a_connection_past_their_deadline_leave_the_pool_usable() -> None:
    async def slowly(writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest) -> bool:
        await asyncio.sleep(0.4)
        if seen.requests[-1][1] == "DeleteRoom":
            seen.deletes_answered += 1
        return await answer_room(writer, number, ask)

    async with livekit_like(slowly) as (url, seen):
        settings = make_settings_for(url, livekit_max_connections=1, livekit_timeout_s=1.0)
        async with running_gateway(settings) as client:
            # One connection, 0.4 s a call, 1 s to answer: two in time, the third's answer
            # would come too late (cancelled on the connection), the fourth gives up waiting.
            rush = await asyncio.gather(*(create_session(client) for _ in range(4)))
            # The two failed creates' clean-ups (DeleteRoom) go first, over the one connection.
            await wait_until(lambda: seen.deletes_answered >= 2)
            after = await create_session(client)

    assert sorted(response.status_code for response in rush) == [201, 201, 504, 504]
    assert after.status_code == 201, after.text


async def test_a_livekit_host_name_that_does_not_resolve_is_a_503_saying_so() -> None:
    async with running_gateway(make_settings_for("http://livekit.invalid:7880")) as client:
        response = await create_session(client)

    assert response.status_code == 503
    assert "host name does not resolve" in response.json()["detail"]


async def test_an_interim_100_continue_is_not_taken_for_the_answer() -> None:
    async def continue_first(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # what some proxies send unasked
        await writer.drain()
        await asyncio.sleep(0.05)
        return await answer_room(writer, number, ask)

    async with (
        livekit_like(continue_first) as (url, seen),
        running_gateway(make_settings_for(url)) as client,
    ):
        first = await create_session(client)
        second = await create_session(client)

    assert [first.status_code, second.status_code] == [201, 201], (first.text, second.text)
    assert seen.creates() == [1, 1]  # each answer read as its own, on the one connection


async def test_an_error_page_running_to_the_end_of_the_connection_is_its_status() -> None:
    async def http_1_0_proxy(
        writer: asyncio.StreamWriter, number: int, ask: api.CreateRoomRequest
    ) -> bool:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<h1>502</h1>")
        await writer.drain()
        return False  # no Content-Length: the body ends where the connection does

    async with (
        livekit_like(http_1_0_proxy) as (url, _),
        running_gateway(make_settings_for(url)) as client,
    ):
        response = await create_session(client)

    assert response.status_code == 502, response.text
    assert "HTTP 502" in response.json()["detail"]


async def test_an_ipv6_literal_host_is_sent_in_brackets() -> None:
    hosts: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        hosts.extend(line.split(": ", 1)[1] for line in head if line.lower().startswith("host:"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n")
        writer.write(b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(serve, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.sockets[0].getsockname()[1]
    pool = TwirpPool(f"http://[::1]:{port}", 1)
    try:
        answer = await pool.post("/twirp/livekit.RoomService/ListRooms", "token", b"")
    finally:
        await pool.aclose()
        server.close()

    assert answer.status == 200
    assert hosts == [f"[::1]:{port}"]  # not "::1:port", which no proxy can split
