"""A real user: the `livekit` rtc SDK (libwebrtc inside) joining a room with the token the gateway
handed out, hearing what the agent publishes, and noticing when it is disconnected."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from livekit import rtc

from tests.support.polling import wait_until

# Root mean square, in int16 units, above which a frame is sound and not silence. The example
# agent's tone is about 6,950; comfort noise and silence are near 0.
AUDIBLE_RMS = 500.0


@dataclass
class User:
    room: rtc.Room
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnect_reason: int | None = None
    token_refreshed: asyncio.Event = field(default_factory=asyncio.Event)

    async def refreshed_token(self, timeout_s: float) -> str:
        """The token LiveKit refreshed for this connection (10 min validity, sent right after
        the join): what a client still holds after its session ended."""
        async with asyncio.timeout(timeout_s):
            await self.token_refreshed.wait()
        # The SDK keeps it for its own reconnects and has no public accessor.
        token = self.room._token
        assert token is not None
        return token

    def agents(self) -> list[rtc.RemoteParticipant]:
        return [
            participant
            for participant in self.room.remote_participants.values()
            if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        ]

    async def wait_for_agent(self, timeout_s: float) -> rtc.RemoteParticipant:
        await wait_until(lambda: bool(self.agents()), timeout_s)
        return self.agents()[0]

    async def wait_for_attribute(
        self, participant: rtc.RemoteParticipant, key: str, timeout_s: float
    ) -> str:
        await wait_until(lambda: key in participant.attributes, timeout_s)
        return participant.attributes[key]

    async def hear_agent(self, timeout_s: float) -> float:
        """Seconds until the first audible frame of the agent's audio track."""
        started = time.monotonic()
        async with asyncio.timeout(timeout_s):
            track = await self._agent_audio_track()
            stream = rtc.AudioStream(track, sample_rate=48_000, num_channels=1)
            try:
                async for event in stream:
                    if _rms(event.frame) > AUDIBLE_RMS:
                        return time.monotonic() - started
            finally:
                await stream.aclose()
        raise AssertionError("the agent's audio track ended before anything was heard")

    async def wait_until_disconnected(self, timeout_s: float) -> float:
        started = time.monotonic()
        async with asyncio.timeout(timeout_s):
            await self.disconnected.wait()
        return time.monotonic() - started

    async def _agent_audio_track(self) -> rtc.RemoteAudioTrack:
        while True:
            for agent in self.agents():
                for publication in agent.track_publications.values():
                    if isinstance(publication.track, rtc.RemoteAudioTrack):
                        return publication.track
            await asyncio.sleep(0.02)


@asynccontextmanager
async def joined_user(url: str, token: str, timeout_s: float = 10) -> AsyncIterator[User]:
    """Connected to the room the token names (subscribing to everything), disconnected after."""
    room = rtc.Room()
    user = User(room)

    def on_disconnected(reason: int) -> None:
        user.disconnect_reason = reason
        user.disconnected.set()

    room.on("disconnected", on_disconnected)
    room.on("token_refreshed", user.token_refreshed.set)
    # Never cancelled: a connect the SDK completes after its caller gave up makes its core panic,
    # and the SDK answers a panic with SIGTERM to its own process (_ffi_client.py).
    options = rtc.RoomOptions(auto_subscribe=True, connect_timeout=timeout_s)
    try:
        await room.connect(url, token, options)
        yield user
    finally:
        await room.disconnect()


def _rms(frame: rtc.AudioFrame) -> float:
    samples = array("h", bytes(frame.data))
    if not samples:
        return 0.0
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples))
