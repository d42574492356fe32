"""SIGTERM to a real `voice-gateway serve` process: it drains, and no request it accepted fails.

The process logs JSON to a file; its access lines say which requests it accepted (read and
answered), the client's records say what each caller saw. Load stays on loopback, bounded in
requests and time.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.gateway import SESSION_BODY
from tests.support.polling import poll_until
from tests.support.processes import AUTH, Gateway, serving
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

LIVEKIT_LATENCY_S = 0.5
WORKERS = 6
STAGGER_S = LIVEKIT_LATENCY_S / WORKERS


@dataclass
class Outcome:
    request_id: str
    status: int | None  # None: no answer (refused, or closed before the request was read)
    started: float
    finished: float


def log_time(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["time"]).timestamp()


async def create_sessions(
    base: str, worker: int, signalled: anyio.Event, outcomes: list[Outcome]
) -> None:
    """Ask for sessions back to back until the gateway stops answering after the signal."""
    await anyio.sleep(worker * STAGGER_S)  # spread the requests over LiveKit's latency
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:
        for number in range(200):
            request_id = f"load-{worker}-{number}"
            started, status = time.time(), None
            try:
                response = await client.post(
                    "/api/voice/session", json=SESSION_BODY, headers={"X-Request-ID": request_id}
                )
                status = response.status_code
            except httpx.TransportError:
                pass
            outcomes.append(Outcome(request_id, status, started, time.time()))
            if status is None and signalled.is_set():
                return  # the listener is closed: this replica is gone for this caller


async def run_load_and_sigterm(gateway: Gateway, workers: int, after_s: float) -> list[Outcome]:
    outcomes: list[Outcome] = []
    signalled = anyio.Event()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as load:
            for worker in range(workers):
                load.start_soon(create_sessions, gateway.base, worker, signalled, outcomes)
            await anyio.sleep(after_s)
            gateway.process.send_signal(signal.SIGTERM)
            signalled.set()
    return outcomes


async def test_sigterm_under_load_fails_no_accepted_request(
    tmp_path: Path, standin: StandIn
) -> None:
    drain = {"VOICE_GATEWAY_SHUTDOWN_DELAY_S": "1", "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "6"}
    with serving(tmp_path, standin, **drain) as gateway:
        standin.set_latency(LIVEKIT_LATENCY_S)  # every request is in flight for a while
        outcomes = await run_load_and_sigterm(gateway, workers=WORKERS, after_s=1.2)
        exit_code = gateway.exit_code(timeout_s=20)

    lines = gateway.log_lines()
    accepted = {
        line["request_id"]: line["status"]
        for line in lines
        if line["logger"] == "voice_gateway.access" and line["path"] == "/api/voice/session"
    }
    seen = {outcome.request_id: outcome.status for outcome in outcomes}
    listener_closed = next(log_time(line) for line in lines if line["message"] == "Shutting down")
    assert exit_code == 0
    assert accepted, "the gateway accepted no request"
    assert all(status == 201 for status in accepted.values())
    assert {request_id: seen[request_id] for request_id in accepted} == accepted
    assert all(status in (201, None) for status in seen.values())
    # It really was under load: requests in flight when the listener closed finished, some
    # well after it (uvicorn itself waits 0.1 s before it starts counting the grace).
    finished_late = [o for o in outcomes if o.started < listener_closed < o.finished - 0.2]
    assert finished_late
    assert all(o.status == 201 for o in finished_late)


async def test_sigterm_turns_readyz_503_at_once_while_still_serving(
    tmp_path: Path, standin: StandIn
) -> None:
    drain = {"VOICE_GATEWAY_SHUTDOWN_DELAY_S": "3", "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "6"}
    with serving(tmp_path, standin, **drain) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base, headers=AUTH, timeout=5) as client:
            assert (await client.get("/readyz")).status_code == 200
            gateway.process.send_signal(signal.SIGTERM)
            await anyio.sleep(0.2)

            ready = await client.get("/readyz")
            created = await client.post("/api/voice/session", json=SESSION_BODY)

    assert ready.status_code == 503
    assert ready.json()["code"] == "shutting_down"
    assert created.status_code == 201


def test_sigterm_stops_background_tasks_closes_livekit_and_exits_0(
    tmp_path: Path, standin: StandIn
) -> None:
    drain = {"VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0.5", "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "5"}
    with serving(tmp_path, standin, **drain) as gateway:
        signalled_at = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        exit_code = gateway.exit_code(timeout_s=20)
        took_s = time.monotonic() - signalled_at

    messages = [line["message"] for line in gateway.log_lines()]
    assert exit_code == 0
    assert "stopped: background tasks ended and the LiveKit client is closed" in messages
    assert took_s < 5 + 2  # the grace, plus the lifespan's own shutdown


CUT_OFF_LINE = "POST /api/voice/session cut off by the stop: answered 503 shutting_down"


@dataclass
class CutOff:
    response: httpx.Response  # what the caller of the request cut off heard
    exit_code: int
    lines: list[dict[str, Any]]
    deletes: int  # DeleteRoom calls that reached LiveKit from the stop on


async def cut_off_by(
    tmp_path: Path,
    standin: StandIn,
    grace_s: float,
    stop: Callable[[Gateway], Awaitable[None]],
    origin: str | None = None,
) -> CutOff:
    """One request held by a hung LiveKit, then `stop`, until the process exits. `origin`: the
    request comes from this browser origin, which the gateway allows."""
    drain = {
        "VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0.2",
        "VOICE_GATEWAY_SHUTDOWN_GRACE_S": f"{grace_s}",
    } | ({"VOICE_GATEWAY_CORS_ORIGINS": origin} if origin else {})
    headers = AUTH | ({"Origin": origin} if origin else {})
    with serving(tmp_path, standin, VOICE_GATEWAY_LIVEKIT_TIMEOUT_S="60", **drain) as gateway:
        standin.hang()  # every call from here on hangs (the stand-in is shared): no reaper deletes
        answer: list[httpx.Response] = []
        creates = standin.requests_count("CreateRoom")

        async def create() -> None:
            answer.append(await client.post("/api/voice/session", json=SESSION_BODY))

        async def in_flight() -> bool:
            return standin.requests_count("CreateRoom") > creates

        async with (
            httpx.AsyncClient(base_url=gateway.base, headers=headers, timeout=15) as client,
            anyio.create_task_group() as request,
        ):
            request.start_soon(create)
            await poll_until(in_flight, timeout_s=5)
            deletes_before = standin.requests_count("DeleteRoom")
            await stop(gateway)
        exit_code = gateway.exit_code(timeout_s=10)
    deletes = standin.requests_count("DeleteRoom") - deletes_before
    return CutOff(answer[0], exit_code, gateway.log_lines(), deletes)


def assert_cut_off_cleanly(cut_off: CutOff) -> None:
    """Answered 503 shutting_down; a warning and its access line, never an error with a
    traceback (uvicorn's "Exception in ASGI application", its text/plain 500); the room's
    clean-up sent in time, the lifespan's shutdown run."""
    response, lines = cut_off.response, cut_off.lines
    assert cut_off.exit_code == 0
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "shutting_down"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert response.headers["retry-after"] == "1"
    assert response.headers["connection"] == "close"
    assert [line for line in lines if line["level"] == "error"] == []
    messages = [line["message"] for line in lines]
    assert CUT_OFF_LINE in messages
    assert "stopped before the clean-up of room" not in " ".join(messages)
    assert "stopped: background tasks ended and the LiveKit client is closed" in messages
    statuses = [line["status"] for line in lines if line["logger"] == "voice_gateway.access"]
    assert statuses[-1] == 503
    assert cut_off.deletes == 1  # the clean-up's call


async def test_a_second_sigterm_stops_without_waiting_for_requests(
    tmp_path: Path, standin: StandIn
) -> None:
    async def sigterm_twice(gateway: Gateway) -> None:
        gateway.process.send_signal(signal.SIGTERM)
        await anyio.sleep(1)  # well past the 0.25 s in which a second copy is the same signal
        gateway.process.send_signal(signal.SIGTERM)

    cut_off = await cut_off_by(tmp_path, standin, 30, sigterm_twice)

    messages = [line["message"] for line in cut_off.lines]
    assert "SIGTERM again: stopping now, without waiting for requests" in messages
    assert "stopping now: cutting off 1 request(s) still served" in messages
    # Forced, but through the lifespan's shutdown: its tasks stopped and its clients closed,
    # after the request cut off had started its room's clean-up while the app still ran.
    assert_cut_off_cleanly(cut_off)


async def test_a_request_still_served_past_the_grace_is_answered_503_and_cleaned_up(
    tmp_path: Path, standin: StandIn
) -> None:
    async def sigterm(gateway: Gateway) -> None:
        gateway.process.send_signal(signal.SIGTERM)

    cut_off = await cut_off_by(tmp_path, standin, 1.5, sigterm)

    messages = [line["message"] for line in cut_off.lines]
    assert "the grace is over: cutting off 1 request(s) still served" in messages
    assert_cut_off_cleanly(cut_off)
    # Answered before the lifespan's shutdown began: uvicorn's own grace cancelled the request
    # and started that shutdown in the same breath, so its clean-up raced the task group's end.
    assert messages.index(CUT_OFF_LINE) < messages.index("Waiting for application shutdown.")


async def test_a_browsers_request_cut_off_carries_cors_so_its_page_reads_the_503(
    tmp_path: Path, standin: StandIn
) -> None:
    async def sigterm(gateway: Gateway) -> None:
        gateway.process.send_signal(signal.SIGTERM)

    page = "https://app.example.test"
    cut_off = await cut_off_by(tmp_path, standin, 1.5, sigterm, origin=page)

    assert_cut_off_cleanly(cut_off)
    assert cut_off.response.headers["access-control-allow-origin"] == page
    assert "Retry-After" in cut_off.response.headers["access-control-expose-headers"]
    assert cut_off.response.headers["vary"] == "Origin"


async def test_a_sigterm_delivered_twice_at_once_still_drains(
    tmp_path: Path, standin: StandIn
) -> None:
    # What a process group signalled as a whole, with `uv run` passing the signal on, delivers:
    # the copy comes once the first is handled (two sent at once would merge into one).
    drain = {"VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0.2", "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "10"}
    responses: list[httpx.Response] = []
    with serving(tmp_path, standin, **drain) as gateway:
        standin.set_latency(1.5)
        async with (
            httpx.AsyncClient(base_url=gateway.base, headers=AUTH, timeout=10) as client,
            anyio.create_task_group() as requests,
        ):

            async def create() -> None:
                responses.append(await client.post("/api/voice/session", json=SESSION_BODY))

            async def draining() -> bool:  # handled on the loop at once, unlike the log line
                return (await client.get("/readyz")).status_code == 503

            requests.start_soon(create)
            await anyio.sleep(0.5)  # the request is in flight, waiting for LiveKit
            gateway.process.send_signal(signal.SIGTERM)
            await poll_until(draining, timeout_s=5, interval_s=0.002)
            gateway.process.send_signal(signal.SIGTERM)
        exit_code = gateway.exit_code(timeout_s=15)

    messages = [line["message"] for line in gateway.log_lines()]
    assert [response.status_code for response in responses] == [201]
    assert exit_code == 0
    assert "SIGTERM again at once: the same stop, delivered twice; still draining" in messages
    assert "SIGTERM again: stopping now, without waiting for requests" not in messages
