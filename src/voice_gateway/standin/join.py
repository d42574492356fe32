"""A client joining with a join token, as the server's `/rtc` handshake decides it.

The stand-in has no WebRTC, but the part of a join that matters to a token issuer is here
(server pkg/service/rtcservice.go and utils.go): the token must verify and grant `roomJoin` for a
named room to a non-empty identity; a room that does not exist yet is created from the token's
`roomConfig` (agents, timeouts, metadata), and one that exists is joined unchanged, its
configuration left as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from google.protobuf.json_format import ParseDict, ParseError
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import CreateRoomRequest, RoomConfiguration

from .auth import AuthFailure, verify
from .store import RoomStore


class JoinRefused(Exception):
    """The server would refuse this join; the message says why, as its HTTP answer does."""


def join_with_token(store: RoomStore, token: str, api_keys: Mapping[str, str]) -> ParticipantInfo:
    try:
        grants = verify(token, api_keys)
    except AuthFailure as failure:
        raise JoinRefused(failure.text) from None
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    if not grants.allows("roomJoin") or not grants.room:
        raise JoinRefused("no permissions to access the room")
    if not grants.identity:
        raise JoinRefused("identity cannot be empty")
    participant = ParticipantInfo(
        identity=grants.identity,
        name=str(claims.get("name", "")),
        metadata=str(claims.get("metadata", "")),
        attributes=claims.get("attributes") or {},
        state=ParticipantInfo.ACTIVE,
        kind=ParticipantInfo.STANDARD,
    )
    return store.join(_create_request(grants.room, claims.get("roomConfig")), participant)


def _create_request(room: str, room_config: Any) -> CreateRoomRequest:
    """SetRoomConfiguration: the token's configuration, under the name the grant gives."""
    try:
        config = ParseDict(room_config or {}, RoomConfiguration(), ignore_unknown_fields=True)
    except ParseError as exc:
        raise JoinRefused("invalid room configuration in token") from exc
    return CreateRoomRequest(
        name=room,
        empty_timeout=config.empty_timeout,
        departure_timeout=config.departure_timeout,
        max_participants=config.max_participants,
        metadata=config.metadata,
        agents=list(config.agents),
        min_playout_delay=config.min_playout_delay,
        max_playout_delay=config.max_playout_delay,
        sync_streams=config.sync_streams,
    )
