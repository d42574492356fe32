"""The room configuration a token-endpoint caller asks for, vetted against the gateway's bounds.

LiveKit clients send a `RoomConfiguration` (snake_case or camelCase protojson) whose agents the
gateway should dispatch. The gateway never copies it into a token as is: it reads the fields it
allows, checks each against the settings, and refuses the ones a client must not control. Fields
this protocol version does not know are dropped, since nothing can check them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import ParseDict, ParseError

from ..errors import FieldError, Forbidden, InvalidRequest
from ..livekit import api
from ..vocabulary import AGENT_ALPHABET, AGENT_ID_PATTERN

FIELD = "room_config"
# Room-wide powers the gateway keeps: recording and streaming (egress), capacity, the room's
# metadata (it holds the session record) and tags. And the media timing every participant gets:
# playout delays are unbounded milliseconds that would delay the agent's audio (and everyone
# else's) in a voice session, and stream sync trades latency the same way; nothing here needs them.
REFUSED_FIELDS = (
    "egress",
    "max_participants",
    "metadata",
    "tags",
    "min_playout_delay",
    "max_playout_delay",
    "sync_streams",
)
MAX_AGENTS = 1  # one voice agent per session, which is all the client SDKs ever send


@dataclass(frozen=True)
class RoomPolicy:
    allowed_agents: Sequence[str]  # empty: any
    default_agent: str | None
    empty_timeout_s: int  # the longest a client may ask for, and the default
    departure_timeout_s: int
    max_metadata_bytes: int


@dataclass(frozen=True)
class VettedRoom:
    """What a client may decide about its room, after the checks."""

    agent: api.RoomAgentDispatch | None
    empty_timeout: int
    departure_timeout: int


def attributes_size(attributes: Mapping[str, str]) -> int:
    """Bytes of keys and values together, as LiveKit counts `max_attributes_size`."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in attributes.items())


def parse_room_config(data: Mapping[str, Any] | None) -> api.RoomConfiguration:
    config = dict(data or {})
    descriptor = cast(Descriptor, api.RoomConfiguration.DESCRIPTOR)  # upb's is the same API
    if wrong := _not_an_object(config, descriptor, FIELD):
        # Else a string where an object goes is read as an empty one ("agents": ["pm-agent"]
        # became an agent without a name), its characters taken for unknown field names.
        raise _invalid(*wrong)
    try:
        return ParseDict(config, api.RoomConfiguration(), ignore_unknown_fields=True)
    except ParseError as exc:
        # The parser's message quotes the offending value; name the field and what it must be.
        names = re.findall(r"Failed to parse (\w+) field", str(exc))
        raise _invalid(".".join([FIELD, *names]), _expected(descriptor, names)) from exc


def _invalid(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid field: {path}", field_errors=[FieldError(path, message)])


def _not_an_object(
    value: Mapping[str, Any], descriptor: Descriptor, path: str
) -> tuple[str, str] | None:
    """The first value that should be an object (a message), or a list of them, and is not:
    its path, and what it must be."""
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None or field.message_type is None or item is None:
            continue
        at = f"{path}.{key}"
        if field.message_type.GetOptions().map_entry:
            if not isinstance(item, dict):
                return at, "must be an object"
            continue
        if field.is_repeated and not isinstance(item, list):
            return at, "must be a list of objects"
        items = item if field.is_repeated else [item]
        for index, one in enumerate(items):
            where = f"{at}.{index}" if field.is_repeated else at
            if not isinstance(one, dict):
                return where, "must be an object"
            if deeper := _not_an_object(one, field.message_type, where):
                return deeper
    return None


_KINDS = {
    FieldDescriptor.CPPTYPE_STRING: "a string",
    FieldDescriptor.CPPTYPE_BOOL: "true or false",
    FieldDescriptor.CPPTYPE_INT32: "an integer",
    FieldDescriptor.CPPTYPE_INT64: "an integer",
    FieldDescriptor.CPPTYPE_UINT32: "an integer from 0 to 4294967295",
    FieldDescriptor.CPPTYPE_UINT64: "an integer of 0 or more",
    FieldDescriptor.CPPTYPE_ENUM: "one of its enum's names",
    FieldDescriptor.CPPTYPE_MESSAGE: "an object",
}


def _expected(descriptor: Descriptor, names: Sequence[str]) -> str:
    field = None
    for name in names:
        field = descriptor.fields_by_name.get(name)
        if field is None:
            return "has the wrong type or an out-of-range value"
        descriptor = field.message_type or descriptor
    if field is None:
        return "has the wrong type or an out-of-range value"
    kind = _KINDS.get(field.cpp_type, "of another type")
    return f"must be a list, each {kind}" if field.is_repeated else f"must be {kind}"


def vet_room_config(
    config: api.RoomConfiguration, room_name: str, policy: RoomPolicy
) -> VettedRoom:
    _refuse_room_wide_powers(config, room_name)
    return VettedRoom(
        agent=_vetted_agent(config, policy),
        empty_timeout=_bounded_timeout(config, "empty_timeout", policy.empty_timeout_s),
        departure_timeout=_bounded_timeout(config, "departure_timeout", policy.departure_timeout_s),
    )


def _refuse_room_wide_powers(config: api.RoomConfiguration, room_name: str) -> None:
    # Zero values are what Swift and Android send for fields they do not use: only a set value
    # asks for something.
    refused = [name for name in REFUSED_FIELDS if _is_set(config, name)]
    if config.name and config.name != room_name:
        refused.append("name")
    if refused:
        names = ", ".join(f"{FIELD}.{name}" for name in refused)
        problems = [FieldError(f"{FIELD}.{n}", "is not for clients to set") for n in refused]
        raise Forbidden(f"Fields a client may not set: {names}", field_errors=problems)


def _is_set(config: api.RoomConfiguration, name: str) -> bool:
    if name == "egress":
        return config.HasField("egress") and config.egress.ByteSize() > 0
    return bool(getattr(config, name))


def _vetted_agent(
    config: api.RoomConfiguration, policy: RoomPolicy
) -> api.RoomAgentDispatch | None:
    if len(config.agents) > MAX_AGENTS:
        problem = FieldError(f"{FIELD}.agents", f"may name at most {MAX_AGENTS} agent")
        raise InvalidRequest("Too many agents", field_errors=[problem])
    if not config.agents:
        default = policy.default_agent
        return api.RoomAgentDispatch(agent_name=default) if default else None
    agent = config.agents[0]
    _check_agent_name(agent.agent_name, policy.allowed_agents)
    _check_agent_sizes(agent, policy.max_metadata_bytes)
    return agent


def _check_agent_name(name: str, allowed: Sequence[str]) -> None:
    field = f"{FIELD}.agents.0.agent_name"
    if not re.fullmatch(AGENT_ID_PATTERN, name):
        problem = FieldError(field, f"must be {AGENT_ALPHABET}")
        raise InvalidRequest(f"Invalid field: {field}", field_errors=[problem])
    check_agent_allowed(name, allowed, field)


def check_agent_allowed(name: str, allowed: Sequence[str], field: str) -> None:
    """422 for an agent the gateway does not dispatch, on every endpoint alike: like any other
    value out of range, it is the request that is wrong, not the caller's rights."""
    if allowed and name not in allowed:
        problem = FieldError(field, "is not an agent this gateway dispatches")
        raise InvalidRequest("Unknown agent", field_errors=[problem])


def _check_agent_sizes(agent: api.RoomAgentDispatch, limit: int) -> None:
    sizes = {
        "metadata": len(agent.metadata.encode()),
        "attributes": attributes_size(agent.attributes),
        "deployment": len(agent.deployment.encode()),
    }
    over = [name for name, size in sizes.items() if size > limit]
    if over:
        problems = [
            FieldError(f"{FIELD}.agents.0.{name}", f"must be at most {limit} bytes")
            for name in over
        ]
        raise InvalidRequest("Agent metadata too large", field_errors=problems)


def _bounded_timeout(config: api.RoomConfiguration, name: str, maximum: int) -> int:
    """The client's timeout when within the gateway's, the gateway's when it asks for none."""
    asked = int(getattr(config, name))
    if asked > maximum:
        problem = FieldError(f"{FIELD}.{name}", f"must be at most {maximum} seconds")
        raise InvalidRequest(f"Invalid field: {FIELD}.{name}", field_errors=[problem])
    return asked or maximum
