"""Joining with a token, as `/rtc` decides it: the token's room configuration creates the room
when the join is the first; a room that exists is joined as it is."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from livekit import api

from tests.support.twirp import API_KEY, API_SECRET
from voice_gateway.standin import JoinRefused, StandIn


def join_token(
    room: str = "r1",
    identity: str = "nate",
    config: api.RoomConfiguration | None = None,
    *,
    room_join: bool = True,
    ttl: timedelta = timedelta(minutes=5),
) -> str:
    token = (
        api.AccessToken(API_KEY, API_SECRET)
        .with_identity(identity)
        .with_name("Nate")
        .with_metadata("m")
        .with_ttl(ttl)
        .with_grants(api.VideoGrants(room_join=room_join, room=room))
    )
    if config is not None:
        token = token.with_room_config(config)
    return token.to_jwt()


DISPATCH = api.RoomConfiguration(
    empty_timeout=42,
    metadata=json.dumps({"session": "s1"}),
    agents=[api.RoomAgentDispatch(agent_name="pm-agent", metadata="job")],
)


def test_a_first_join_creates_the_room_from_the_tokens_configuration(standin: StandIn) -> None:
    standin.join(join_token(config=DISPATCH))

    room = standin.get_room("r1")
    assert (room.metadata, room.empty_timeout) == (DISPATCH.metadata, 42)
    assert [a.agent_name for a in standin.get_room_agents("r1")] == ["pm-agent"]


def test_the_participant_carries_the_tokens_identity_name_and_metadata(
    standin: StandIn,
) -> None:
    joined = standin.join(join_token())

    (listed,) = standin.list_participants("r1")
    assert listed == joined
    assert (joined.identity, joined.name, joined.metadata) == ("nate", "Nate", "m")
    assert joined.state == api.ParticipantInfo.ACTIVE


def test_joining_a_room_that_exists_leaves_its_configuration_as_it_was(
    standin: StandIn,
) -> None:
    standin.create_room("r1", metadata="first")

    standin.join(join_token(config=DISPATCH))

    assert standin.get_room("r1").metadata == "first"
    assert standin.get_room_agents("r1") == []


def test_a_token_without_the_join_grant_is_refused(standin: StandIn) -> None:
    with pytest.raises(JoinRefused, match="no permissions"):
        standin.join(join_token(room_join=False))

    assert not standin.has_room("r1")


def test_an_expired_token_is_refused(standin: StandIn) -> None:
    with pytest.raises(JoinRefused, match="expired"):
        standin.join(join_token(ttl=timedelta(minutes=-5)))


def test_a_token_signed_with_another_secret_is_refused(standin: StandIn) -> None:
    forged = api.AccessToken(API_KEY, "another-secret").with_identity("nate")
    token = forged.with_grants(api.VideoGrants(room_join=True, room="r1")).to_jwt()

    with pytest.raises(JoinRefused, match="signature is invalid"):
        standin.join(token)
