"""Closing rooms nobody is in: the check run by hand at chosen times, and the server running it."""

from __future__ import annotations

import time

from livekit.api import CreateRoomRequest, ParticipantInfo

from voice_gateway.standin import StandIn


def test_room_nobody_joined_closes_after_its_empty_timeout(standin: StandIn) -> None:
    created = standin.create_room("r1").creation_time

    assert standin.close_idle_rooms(now=created + 299) == []
    assert standin.close_idle_rooms(now=created + 300) == ["r1"]
    assert not standin.has_room("r1")


def test_occupied_room_stays_open_past_its_empty_timeout(standin: StandIn) -> None:
    created = standin.create_room("r1").creation_time
    standin.add_participant("r1", "nate")

    assert standin.close_idle_rooms(now=created + 10_000) == []


def test_room_closes_after_its_departure_timeout_once_the_last_one_left(
    standin: StandIn,
) -> None:
    standin.add_participant("r1", "nate")
    standin.remove_participant("r1", "nate")
    left_at = standin.get_room("r1").creation_time

    assert standin.close_idle_rooms(now=left_at + 10) == []
    assert standin.close_idle_rooms(now=left_at + 22) == ["r1"]


def test_an_agent_alone_does_not_keep_a_room_open(standin: StandIn) -> None:
    created = standin.create_room("r1").creation_time
    standin.add_participant("r1", "agent", kind=ParticipantInfo.AGENT)

    assert standin.close_idle_rooms(now=created + 300) == ["r1"]


def test_the_server_closes_idle_rooms_by_itself_unless_turned_off() -> None:
    with StandIn(port=0) as closing, StandIn(port=0, close_empty_rooms=False) as keeping:
        for server in (closing, keeping):
            server.state.store.create_room(CreateRoomRequest(name="r1", empty_timeout=1))
        deadline = time.monotonic() + 3
        while closing.has_room("r1") and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not closing.has_room("r1")
        assert keeping.has_room("r1")
