"""The gateway under the session-event tests: served on loopback over the stand-in, its events to
a receiver URL and the stand-in's webhooks to it, and a session taken through every step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from tests.support.event_receiver import EVENTS_SECRET
from tests.support.gateway import create_session, make_settings, serving_gateway
from tests.support.polling import wait_until
from voice_gateway.standin import StandIn

WEBHOOK = "/api/voice/webhook"
EVERY_STEP = [
    "session.created",
    "session.agent_joined",
    "session.user_joined",
    "session.user_left",
    "session.agent_left",
    "session.ended",
]


@asynccontextmanager
async def gateway(
    standin: StandIn, receiver_url: str, *, webhooks: bool = True, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """With `webhooks`, the stand-in's go to it: a test using that also uses the
    `webhooks_off_afterwards` fixture."""
    # A short grace: what a dead receiver leaves pending would hold the shutdown for all of it.
    values = {
        "events_url": [receiver_url],
        "events_secret": EVENTS_SECRET,
        "shutdown_grace_s": 2,
        "shutdown_delay_s": 0,
    } | overrides
    async with serving_gateway(make_settings(standin, **values)) as url:
        if webhooks:
            standin.set_webhook_urls([f"{url}{WEBHOOK}"])
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


async def go_through_every_step(
    standin: StandIn, client: httpx.AsyncClient, user_id: str = "nate"
) -> dict[str, Any]:
    """A session whose agent and user join and leave, then is ended: its room name and id.
    The stand-in must serve `pm-agent` (`standin.agents.serve`)."""
    session: dict[str, Any] = (await create_session(client, user_id=user_id)).json()
    room = session["room_name"]
    await wait_until(lambda: len(standin.list_participants(room)) == 1)  # the agent
    standin.join(session["token"])
    await anyio.sleep(0.2)  # each webhook heard before the next step
    standin.remove_participant(room, user_id)
    await anyio.sleep(0.2)
    standin.agents.leave(room)
    await anyio.sleep(0.2)
    assert (await client.delete(f"/api/voice/session/{room}")).status_code == 204
    return session
