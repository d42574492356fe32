"""SIGTERM to a real `voice-gateway serve` process: it drains, and no request it accepted fails.

The process logs JSON to a file; its access lines say which requests it accepted (read and
answered), the client's records say what each caller saw. Load stays on loopback, bounded in
requests and time.
"""

from __future__ import annotations

import signal
import time
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


def test_a_second_sigterm_stops_without_waiting_for_requests(
    tmp_path: Path, standin: StandIn
) -> None:
    drain = {"VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0.2", "VOICE_GATEWAY_SHUTDOWN_GRACE_S": "30"}
    with serving(tmp_path, standin, VOICE_GATEWAY_LIVEKIT_TIMEOUT_S="60", **drain) as gateway:
        standin.hang()  # a request that would keep the drain waiting for its whole grace
        client = httpx.Client(base_url=gateway.base, headers=AUTH, timeout=0.5)
        with client, pytest.raises(httpx.ReadTimeout):
            client.post("/api/voice/session", json=SESSION_BODY)
        # The stand-in is shared; every call from here on hangs, so the reaper deletes nothing.
        deletes_before = standin.requests_count("DeleteRoom")
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(1)  # well past the 0.25 s in which a second copy is the same signal
        gateway.process.send_signal(signal.SIGTERM)
        exit_code = gateway.exit_code(timeout_s=10)

    lines = gateway.log_lines()
    messages = [line["message"] for line in lines]
    errors = [line for line in lines if line["level"] == "error"]
    assert "SIGTERM again: stopping now, without waiting for requests" in messages
    assert exit_code == 0
    # Forced, but through the lifespan's shutdown: its tasks stopped and its clients closed,
    # after the request cut off had started its room's clean-up while the app still ran.
    assert "stopped: background tasks ended and the LiveKit client is closed" in messages
    assert "stopped before the clean-up of room" not in " ".join(messages)
    deletes = standin.requests_count("DeleteRoom") - deletes_before
    assert deletes == 1  # the clean-up's call, sent in time
    assert {line["message"] for line in errors} <= {"Exception in ASGI application\n"}, errors


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
