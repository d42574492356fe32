"""Room methods through the real SDK, over protobuf, as the gateway calls them."""

from __future__ import annotations

import re
import time

import pytest
from livekit.api import (
    CreateRoomRequest,
    DeleteRoomRequest,
    ListRoomsRequest,
    LiveKitAPI,
    RoomAgentDispatch,
    ServerError,
    UpdateRoomMetadataRequest,
)

from voice_gateway.standin import StandIn

ROOM_SID = re.compile(r"RM_[23456789A-HJ-NP-Za-km-z]{12}")


async def test_create_room_answers_a_new_room_with_sid_times_and_metadata(lk: LiveKitAPI) -> None:
    before = time.time()
    room = await lk.room.create_room(CreateRoomRequest(name="r1", metadata='{"a":1}'))

    assert ROOM_SID.fullmatch(room.sid)
    assert (room.name, room.metadata) == ("r1", '{"a":1}')
    assert int(before) <= room.creation_time <= time.time()
    assert room.creation_time_ms // 1000 == room.creation_time
    assert room.turn_password


async def test_create_room_applies_the_server_defaults(lk: LiveKitAPI) -> None:
    room = await lk.room.create_room(CreateRoomRequest(name="r1"))

    assert (room.empty_timeout, room.departure_timeout, room.max_participants) == (300, 20, 0)
    assert "audio/opus" in [codec.mime for codec in room.enabled_codecs]


async def test_create_room_keeps_requested_timeouts(lk: LiveKitAPI) -> None:
    request = CreateRoomRequest(
        name="r1", empty_timeout=42, departure_timeout=7, max_participants=3
    )
    room = await lk.room.create_room(request)

    assert (room.empty_timeout, room.departure_timeout, room.max_participants) == (42, 7, 3)


async def test_create_room_keeps_the_requested_agent_dispatch(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    agents = [RoomAgentDispatch(agent_name="pm-agent", metadata='{"user":"nate"}')]
    await lk.room.create_room(CreateRoomRequest(name="r1", agents=agents))

    assert standin.get_room_agents("r1") == agents
    assert standin.get_create_request("r1").agents[0].agent_name == "pm-agent"


async def test_create_room_again_returns_the_live_room_unchanged(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    first = await lk.room.create_room(CreateRoomRequest(name="r1", metadata="first"))
    agents = [RoomAgentDispatch(agent_name="other")]
    again = await lk.room.create_room(
        CreateRoomRequest(name="r1", metadata="second", empty_timeout=5, agents=agents)
    )

    assert again == first
    assert standin.get_room_agents("r1") == []


async def test_list_rooms_without_names_returns_every_room(lk: LiveKitAPI) -> None:
    for name in ("a", "b", "c"):
        await lk.room.create_room(CreateRoomRequest(name=name))

    listed = await lk.room.list_rooms(ListRoomsRequest())

    assert sorted(room.name for room in listed.rooms) == ["a", "b", "c"]


async def test_list_rooms_with_names_returns_only_those_that_exist(lk: LiveKitAPI) -> None:
    for name in ("a", "b", "c"):
        await lk.room.create_room(CreateRoomRequest(name=name))

    listed = await lk.room.list_rooms(ListRoomsRequest(names=["a", "c", "missing"]))

    assert sorted(room.name for room in listed.rooms) == ["a", "c"]


async def test_list_rooms_with_none_is_empty(lk: LiveKitAPI) -> None:
    assert list((await lk.room.list_rooms(ListRoomsRequest())).rooms) == []


async def test_delete_room_removes_it_and_its_participants(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))
    standin.add_participant("r1", "nate")

    await lk.room.delete_room(DeleteRoomRequest(room="r1"))

    assert not standin.has_room("r1")
    assert standin.list_participants("r1") == []


async def test_delete_room_that_does_not_exist_is_not_found(lk: LiveKitAPI) -> None:
    with pytest.raises(ServerError) as caught:
        await lk.room.delete_room(DeleteRoomRequest(room="missing"))

    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert caught.value.message == "twirp error unknown: requested room does not exist"


async def test_update_room_metadata_changes_and_returns_the_room(
    lk: LiveKitAPI, standin: StandIn
) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1", metadata="old"))

    room = await lk.room.update_room_metadata(UpdateRoomMetadataRequest(room="r1", metadata="new"))

    assert room.metadata == "new"
    assert standin.get_room("r1").metadata == "new"


async def test_update_room_metadata_of_a_missing_room_is_not_found(lk: LiveKitAPI) -> None:
    with pytest.raises(ServerError) as caught:
        await lk.room.update_room_metadata(UpdateRoomMetadataRequest(room="nope", metadata="x"))

    assert caught.value.status == 404
    assert caught.value.message == "twirp error unknown: requested room does not exist"


async def test_room_name_of_257_bytes_is_refused(lk: LiveKitAPI) -> None:
    with pytest.raises(ServerError) as caught:
        await lk.room.create_room(CreateRoomRequest(name="é" * 128 + "x"))

    assert (caught.value.status, caught.value.code) == (400, "invalid_argument")
    assert caught.value.message == (
        "twirp error unknown: room name length exceeds limits: max length 256"
    )


async def test_room_name_of_256_bytes_is_accepted(lk: LiveKitAPI) -> None:
    room = await lk.room.create_room(CreateRoomRequest(name="n" * 256))

    assert len(room.name) == 256


async def test_metadata_over_512_kib_is_refused_naming_the_argument(lk: LiveKitAPI) -> None:
    with pytest.raises(ServerError) as caught:
        await lk.room.create_room(CreateRoomRequest(name="r1", metadata="m" * 524_289))

    assert (caught.value.status, caught.value.code) == (400, "invalid_argument")
    assert caught.value.message == "metadata size exceeds limits 524288"
    assert caught.value.metadata == {"argument": "metadata size exceeds limits"}
