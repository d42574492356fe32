"""Session events in a burst: how fast the gateway delivers 1,000 events queued at once.

The LiveKit stand-in and the gateway (`voice_gateway serve`, events to a receiver here) run as
real processes on 127.0.0.1; the receiver runs in this process and verifies every event with the
`standardwebhooks` library, as an app would. Each round holds every request the receiver gets
while 500 sessions are created and ended (`session.created` and `session.ended` each: 1,000
events queued, 64 of them in flight and held), then lets go and times the delivery of all of them:
the queue, the lanes (one per session), signing and sending, 64 requests at a time.

    uv run python -m bench.event_burst            # 1,000 events, 3 rounds (~1 minute)
    uv run python -m bench.event_burst --smoke    # 100 events, one round

Exit status: 0 when every event was delivered within the round's time limit, 1 when not, 2 when
something could not start. Speed never fails a run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from .children import HOST, Child, Children, StartFailure, cpu_seconds, free_port
from .report import describe_machine
from .spread import median_and_range
from .targets import Credentials, start_gateway_process, start_standin

EXIT_FAILED = 1
EXIT_CANNOT_START = 2
CREATES_AT_ONCE = 16  # clients creating and ending sessions
ROUND_LIMIT_S = 120.0  # a round whose events are not all delivered by then fails the run
SESSION_BODY = {"agent_id": "pm-agent", "session_duration_hours": 1}


class Receiver:
    """An app's events endpoint: verifies and counts; while `let_go` is clear, every request
    waits for it before being answered."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)
        self.delivered = 0
        self.unverified = 0
        self.let_go = asyncio.Event()
        self.expected = 0  # once this many are delivered, `all_in` is set
        self.all_in = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await self.let_go.wait()
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        try:
            self._webhook.verify(body, headers)
        except WebhookVerificationError:
            self.unverified += 1
            status = 401
        else:
            self.delivered += 1
            status = 204
            if self.delivered >= self.expected:
                self.all_in.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass(frozen=True)
class Round:
    events: int
    queued_s: float  # creating and ending the sessions, the receiver holding every request
    delivered_s: float  # from letting go to the last event taken
    gateway_cpu_s: float | None  # the gateway process's CPU time over the delivery

    @property
    def gateway_cpu_percent(self) -> str:
        if self.gateway_cpu_s is None:
            return "-"
        return f"{100 * self.gateway_cpu_s / self.delivered_s:.0f}%"

    @property
    def events_per_s(self) -> float:
        return self.events / self.delivered_s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.event_burst",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="100 events, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, smoke 1)")
    args = parser.parse_args(argv)
    events = 100 if args.smoke else 1000
    rounds = args.rounds or (1 if args.smoke else 3)
    with (
        tempfile.TemporaryDirectory(prefix="voice-gateway-bench-") as work_dir,
        Children(Path(work_dir)) as children,
    ):
        try:
            results = asyncio.run(run(children, events, rounds))
        except StartFailure as exc:
            print(f"bench: {exc}\n{children.log_tails()}", file=sys.stderr)
            return EXIT_CANNOT_START
        except TimeoutError:
            print(f"FAIL events not all delivered within {ROUND_LIMIT_S:g} s", file=sys.stderr)
            print(children.log_tails(), file=sys.stderr)
            return EXIT_FAILED
    print(f"\n{describe_machine()}\n{format_rounds(results)}")
    return 0


async def run(children: Children, events: int, rounds: int) -> list[Round]:
    creds = Credentials()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = Receiver(secret)
    port = free_port()
    config = uvicorn.Config(receiver, host=HOST, port=port, lifespan="off", access_log=False,
                            log_level="warning", ws="none")  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        extra = {
            "VOICE_GATEWAY_EVENTS_URL": f"http://{HOST}:{port}/events",
            "VOICE_GATEWAY_EVENTS_SECRET": secret,
            # Held requests wait for the whole queueing phase: no attempt may time out meanwhile.
            "VOICE_GATEWAY_EVENTS_TIMEOUT_S": "60",
        }
        _, livekit_url = await asyncio.to_thread(start_standin, children, creds, 0, "events")
        gateway, base_url = await asyncio.to_thread(
            start_gateway_process, children, creds, livekit_url, "events", extra
        )
        headers = {"Authorization": f"Bearer {creds.caller_key}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            return [await one_round(client, gateway, receiver, events, n) for n in range(rounds)]
    finally:
        server.should_exit = True
        await serving


async def one_round(
    client: httpx.AsyncClient, gateway: Child, receiver: Receiver, events: int, number: int
) -> Round:
    print(f"round {number + 1}: {events} events ...", file=sys.stderr)
    receiver.let_go.clear()
    receiver.all_in.clear()
    receiver.expected = receiver.delivered + events
    start = time.monotonic()
    users = [f"burst-{number}-{n}" for n in range(events // 2)]
    limit = asyncio.Semaphore(CREATES_AT_ONCE)
    await asyncio.gather(*(create_and_end(client, limit, user) for user in users))
    queued, cpu_before = time.monotonic(), cpu_seconds(gateway.pid)
    receiver.let_go.set()
    async with asyncio.timeout(ROUND_LIMIT_S):
        await receiver.all_in.wait()
    delivered, cpu_after = time.monotonic(), cpu_seconds(gateway.pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Round(events, queued - start, delivered - queued, cpu)


async def create_and_end(client: httpx.AsyncClient, limit: asyncio.Semaphore, user: str) -> None:
    async with limit:
        created = await client.post("/api/voice/session", json=SESSION_BODY | {"user_id": user})
        created.raise_for_status()
        ended = await client.delete(f"/api/voice/session/{created.json()['room_name']}")
        ended.raise_for_status()


def format_rounds(rounds: Sequence[Round]) -> str:
    lines = [
        f"round {n + 1}: {r.events} events queued in {r.queued_s:.2f} s, delivered in "
        f"{r.delivered_s:.2f} s once let go: {r.events_per_s:.0f} events/s, "
        f"gateway CPU {r.gateway_cpu_percent} of a core"
        for n, r in enumerate(rounds)
    ]
    delivered = median_and_range([r.delivered_s for r in rounds], 2)
    rates = median_and_range([r.events_per_s for r in rounds], 0)
    lines.append(f"delivery: {delivered} s, {rates} events/s (median over rounds, lowest-highest)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
