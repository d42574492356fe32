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
from typing import Any

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
    try:
        return ParseDict(dict(data or {}), api.RoomConfiguration(), ignore_unknown_fields=True)
    except ParseError as exc:
        # The parser's message quotes the offending value; name the field only.
        path = ".".join([FIELD, *re.findall(r"Failed to parse (\w+) field", str(exc))])
        problem = FieldError(path, "has the wrong type or an out-of-range value")
        raise InvalidRequest(f"Invalid field: {path}", field_errors=[problem]) from exc


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
