"""`message_dict` gives what `MessageToDict` gives, key for key and in the same order: for the
room configuration the gateway signs into every join token (its own fast path), and for the
fields it leaves to json_format (64-bit integers, enums, maps, well-known types), whole."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.wrappers_pb2 import StringValue, UInt32Value
from livekit import api

from voice_gateway.livekit.proto_json import _NotPlain, _plain_message, message_dict

SESSION_CONFIG = api.RoomConfiguration(
    name="foundry_u1_pm-agent_sess_x",
    empty_timeout=120,
    departure_timeout=20,
    metadata='{"session_id":"sess_x","note":"é \\" \\n"}',
    agents=[
        api.RoomAgentDispatch(agent_name="pm-agent", metadata='{"user_id":"u1"}'),
        api.RoomAgentDispatch(agent_name="second"),
    ],
)
EVERY_FIELD = api.RoomConfiguration(
    name="r",
    empty_timeout=1,
    departure_timeout=2,
    max_participants=3,
    metadata="m",
    egress=api.RoomEgress(
        room=api.RoomCompositeEgressRequest(
            room_name="r", audio_only=True, audio_mixing="DUAL_CHANNEL_AGENT"
        )
    ),
    min_playout_delay=4,
    max_playout_delay=5,
    sync_streams=True,
    agents=[api.RoomAgentDispatch(agent_name="a")],
    tags={"team": "voice"},
)
PARTICIPANT = api.ParticipantInfo(
    sid="PA_1",
    identity="u1",
    state=api.ParticipantInfo.State.ACTIVE,
    joined_at=1_764_633_600,
    kind=api.ParticipantInfo.Kind.AGENT,
    attributes={"lk.agent.state": "listening"},
)
PLAIN = [
    SESSION_CONFIG,
    api.RoomConfiguration(),
    api.RoomConfiguration(name="r", sync_streams=False, max_participants=0),
    api.ListRoomsRequest(names=["a", "b"]),
    api.RoomAgentDispatch(agent_name="pm-agent"),
]
LEFT_TO_JSON_FORMAT = [
    EVERY_FIELD,
    PARTICIPANT,
    api.RoomConfiguration(tags={"k": "v"}),
    Timestamp(seconds=1_764_633_600, nanos=5),
    StringValue(value="x"),
    UInt32Value(value=7),
]


def test_the_session_config_is_json_formats_in_the_same_order() -> None:
    shown = message_dict(SESSION_CONFIG)

    assert shown == MessageToDict(SESSION_CONFIG)
    assert list(shown) == list(MessageToDict(SESSION_CONFIG))
    assert set(shown) == {"name", "emptyTimeout", "departureTimeout", "metadata", "agents"}


@pytest.mark.parametrize("message", PLAIN, ids=lambda m: type(m).__name__)
def test_plain_messages_are_written_by_the_fast_path_as_json_format_would(
    message: Message,
) -> None:
    assert _plain_message(message) == MessageToDict(message)
    assert message_dict(message) == MessageToDict(message)


@pytest.mark.parametrize("message", LEFT_TO_JSON_FORMAT, ids=lambda m: type(m).__name__)
def test_what_json_format_renders_its_own_way_is_left_to_it(message: Message) -> None:
    expected: Any = MessageToDict(message)

    assert message_dict(message) == expected
    if not message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        with pytest.raises(_NotPlain):
            _plain_message(message)


def test_the_quoted_64_bit_integers_and_enum_names_come_from_json_format() -> None:
    shown = message_dict(PARTICIPANT)

    assert shown["joinedAt"] == "1764633600"
    assert shown["state"] == "ACTIVE"
    assert shown["attributes"] == {"lk.agent.state": "listening"}
    assert message_dict(StringValue(value="x")) == "x"
