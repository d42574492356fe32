"""The smallest voice agent voice-gateway can dispatch: a LiveKit Agents worker that needs no API
keys besides LiveKit's. When the gateway dispatches it into a session's room it joins, reads the
dispatch metadata (the session it serves), shows that session id to the room as a participant
attribute, and plays a steady 440 Hz tone until the room ends.

    LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... \\
    LIVEKIT_AGENT_NAME=example-agent python -m livekit.agents start examples/agent/agent.py

It registers under LIVEKIT_AGENT_NAME (default `example-agent`): the name the gateway's callers
pass as `agent_id` (or VOICE_GATEWAY_DEFAULT_AGENT). To hear a real voice agent instead, keep the
worker set-up below and replace `serve_session` with an `AgentSession` (speech-to-text, an LLM,
text-to-speech; see the README's "Your own agent").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from array import array

from livekit import rtc
from livekit.agents import AgentServer, JobContext

logger = logging.getLogger("example-agent")

AGENT_NAME = os.environ.get("LIVEKIT_AGENT_NAME") or "example-agent"
# Where the session id the agent serves is shown to the room: the user (and the tests) read it.
SESSION_ATTRIBUTE = "voice_gateway.session_id"

SAMPLE_RATE = 48_000
TONE_HZ = 440
# 50 ms holds exactly 22 periods of 440 Hz at 48 kHz, so one frame repeats without a click.
FRAME_SAMPLES = SAMPLE_RATE // 20
TONE_AMPLITUDE = 0.3 * 32_767


def _zero_load() -> float:
    # The default load is the machine's CPU: a busy host would mark the worker unavailable and
    # LiveKit would dispatch nothing. One example worker always takes the job.
    return 0.0


server = AgentServer(
    # Its health endpoint on loopback and a free port: the default is every interface, port
    # 8081, and two workers on one host would collide.
    host=os.environ.get("AGENT_HEALTH_HOST", "127.0.0.1"),
    port=int(os.environ.get("AGENT_HEALTH_PORT", "0")),
    load_fnc=_zero_load,
    num_idle_processes=1,
    drain_timeout=5,
    shutdown_process_timeout=5,
)


@server.rtc_session(agent_name=AGENT_NAME)
async def serve_session(ctx: JobContext) -> None:
    session_id = _session_id_of(ctx.job.metadata)
    logger.info("dispatched into %s for session %s", ctx.job.room.name, session_id)
    await ctx.connect()
    await ctx.room.local_participant.set_attributes({SESSION_ATTRIBUTE: session_id})
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await ctx.room.local_participant.publish_track(track, options)
    playing = asyncio.create_task(_play_tone(source))

    async def stop_playing(reason: str) -> None:
        playing.cancel()
        logger.info("left %s: %s", ctx.job.room.name, reason)

    ctx.add_shutdown_callback(stop_playing)


def _session_id_of(metadata: str) -> str:
    """The gateway's dispatch metadata is `{"session_id": ..., "user_id": ...}`; a client may
    have sent its own, which need not be JSON."""
    try:
        told = json.loads(metadata)
    except ValueError:
        return ""
    return str(told.get("session_id", "")) if isinstance(told, dict) else ""


async def _play_tone(source: rtc.AudioSource) -> None:
    samples = array(
        "h",
        (
            round(TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE))
            for n in range(FRAME_SAMPLES)
        ),
    )
    frame = rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
    while True:
        await source.capture_frame(frame)  # waits while the source's buffer is full: paced
