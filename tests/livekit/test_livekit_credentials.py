"""The gateway's own RoomService calls carry the least privilege each needs."""

from __future__ import annotations

import httpx

from tests.support.gateway import create_session
from voice_gateway.standin import StandIn


async def test_room_calls_use_the_service_grants_only(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    await create_session(client)

    grants = standin.requests("CreateRoom")[-1].grants
    assert grants is not None
    powers = {"roomCreate", "roomList", "roomAdmin", "roomJoin", "roomRecord"}
    assert {power for power in powers if grants.allows(power)} == {"roomCreate", "roomList"}


async def test_participant_reads_use_an_admin_grant_for_that_room_only(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]
    await client.get(f"/api/voice/session/{room_name}")

    grants = standin.requests("ListParticipants")[-1].grants
    assert grants is not None
    assert grants.allows("roomAdmin")
    assert grants.room == room_name
    assert not grants.allows("roomCreate")
