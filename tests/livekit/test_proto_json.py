"""`message_dict` gives what `MessageToDict` gives, key for key and in the same order: for the
room configuration the gateway signs into every join token (its own fast path), and for the
fields it leaves to json_format (64-bit integers, enums, maps, well-known types), whole; and for
every message of the LiveKit protocol, filled with edge values, zeros, oneofs and empty nested
messages, so a protobuf or protocol upgrade that changes json_format's answer shows here."""

from __future__ import annotations

import importlib
import json
from pkgutil import iter_modules
from typing import Any

import livekit.protocol as lp
import pytest
from google.protobuf.descriptor import FieldDescriptor
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


def protocol_messages() -> list[type[Message]]:
    """Every message of the LiveKit protocol the SDK ships."""
    modules = [
        importlib.import_module(f"livekit.protocol.{m.name}") for m in iter_modules(lp.__path__)
    ]
    found = {
        kind
        for module in modules
        for kind in vars(module).values()
        if isinstance(kind, type) and issubclass(kind, Message) and kind is not Message
    }
    return sorted(found, key=lambda kind: kind.DESCRIPTOR.full_name)


# A value of each kind at its edge: the most negative int32, the largest uint32, unicode that
# JSON escapes and one it does not; each kind's zero, which a field with presence still shows;
# and only the kinds the fast path writes, so that it writes every message.
PLAIN_EDGES: dict[Any, Any] = {
    FieldDescriptor.CPPTYPE_STRING: 'é "\n\U0001f600',
    FieldDescriptor.CPPTYPE_BOOL: True,
    FieldDescriptor.CPPTYPE_INT32: -(2**31),
    FieldDescriptor.CPPTYPE_UINT32: 2**32 - 1,
}
EDGES: dict[Any, Any] = PLAIN_EDGES | {
    FieldDescriptor.CPPTYPE_INT64: -(2**63),
    FieldDescriptor.CPPTYPE_UINT64: 2**64 - 1,
    FieldDescriptor.CPPTYPE_FLOAT: 1.5,
    FieldDescriptor.CPPTYPE_DOUBLE: -0.0,
    FieldDescriptor.CPPTYPE_ENUM: "the last",
    "bytes": b"\x00\xff",
    "well-known": "set, empty",
}
ZEROS = {kind: type(value)() for kind, value in EDGES.items()}
Field = Any  # a FieldDescriptor: the stubs' or upb's, whose types mypy keeps apart


def filled(message: Message, values: dict[Any, Any], depth: int = 0) -> Message:
    """Every field of a kind in `values` set (the last member of a oneof wins), nested messages
    to two levels and below that set but empty."""
    for field in message.DESCRIPTOR.fields:
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            _fill_message_field(message, field, values, depth)
        elif (value := _value_for(field, values)) is not None:
            _set(message, field, value)
    return message


def _value_for(field: Field, values: dict[Any, Any]) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return values.get("bytes")
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and field.cpp_type in values:
        return field.enum_type.values[-1].number
    return values.get(field.cpp_type)


def _fill_message_field(message: Message, field: Field, values: dict[Any, Any], depth: int) -> None:
    kind = field.message_type
    if kind.GetOptions().map_entry:
        return  # maps are json_format's whole-message case, tested above
    well_known = kind.full_name.startswith("google.protobuf.")
    if well_known and "well-known" not in values:
        return
    inner = getattr(message, field.name)
    inner = inner.add() if field.is_repeated else inner
    if depth < 2 and not well_known:
        filled(inner, values, depth + 1)
    inner.SetInParent()


def _set(message: Message, field: Field, value: Any) -> None:
    if field.is_repeated:
        getattr(message, field.name).extend([value, value])
    else:
        setattr(message, field.name, value)


@pytest.mark.parametrize("values", [PLAIN_EDGES, EDGES, ZEROS], ids=["plain", "edges", "zeros"])
def test_every_protocol_message_filled_is_json_formats_key_for_key(
    values: dict[Any, Any],
) -> None:
    for kind in protocol_messages():
        message = filled(kind(), values)
        expected = MessageToDict(message)

        assert json.dumps(message_dict(message)) == json.dumps(expected), kind.__name__
        if values is PLAIN_EDGES:  # written by the fast path, not handed to json_format
            assert _plain_message(message) == expected, kind.__name__


def test_a_nested_message_set_but_empty_is_an_empty_object() -> None:
    config = api.RoomConfiguration(name="r")
    config.agents.add()

    assert message_dict(config) == {"name": "r", "agents": [{}]} == MessageToDict(config)
