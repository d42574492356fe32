"""A client that holds a token of an ended session and keeps trying to join with it, in a process
of its own: `python -m tests.support.rejoining_client URL TOKEN`. It prints one line per event
(`<seconds since start> joining|connected|disconnected|agent|failed`) and is killed by the test.

A process, because the rtc SDK cannot be told to stop a join: a connect its caller abandons
makes the SDK's core panic, and the SDK then sends SIGTERM to its own process.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from livekit import rtc

from tests.support.repo_files import ROOT

_STARTED = time.monotonic()


@dataclass(frozen=True)
class Attempts:
    events: list[tuple[float, str]]

    def longest_connection_s(self, until_s: float) -> float:
        """The longest time the client stayed connected (one still open counts until `until_s`)."""
        longest, since = 0.0, None
        for at, event in self.events:
            if event == "connected":
                since = at
            elif event == "disconnected" and since is not None:
                longest, since = max(longest, at - since), None
        return max(longest, until_s - since) if since is not None else longest


async def rejoin_for(url: str, token: str, seconds: float) -> Attempts:
    """Run the client for `seconds`, then kill it; what it saw."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", __name__, url, token),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # the SDK's retry warnings, every 0.3 s
        cwd=ROOT,  # where `tests` is a package
    )
    assert process.stdout is not None
    events: list[tuple[float, str]] = []
    try:
        async with asyncio.timeout(seconds):
            async for line in process.stdout:
                at, event = line.decode().split()
                events.append((float(at), event))
    except TimeoutError:
        pass
    finally:
        process.kill()
        await process.wait()
    return Attempts(events)


async def _keep_joining(url: str, token: str) -> None:
    while True:
        await _join_once(url, token)
        await asyncio.sleep(0.2)


async def _join_once(url: str, token: str) -> None:
    room, disconnected = rtc.Room(), asyncio.Event()
    room.on("disconnected", lambda _reason: disconnected.set())
    room.on("participant_connected", _report_if_agent)
    _report("joining")
    try:
        await room.connect(url, token)
    except rtc.ConnectError:
        _report("failed")
        return
    _report("connected")
    for participant in room.remote_participants.values():
        _report_if_agent(participant)
    await disconnected.wait()
    _report("disconnected")
    await room.disconnect()


def _report_if_agent(participant: rtc.RemoteParticipant) -> None:
    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
        _report("agent")


def _report(event: str) -> None:
    print(f"{time.monotonic() - _STARTED:.3f} {event}", flush=True)


if __name__ == "__main__":
    asyncio.run(_keep_joining(sys.argv[1], sys.argv[2]))
