"""Idempotent session creation, with no database: the session id is a keyed hash, LiveKit the store.

`session_id = "sess_" + base64url(HMAC-SHA256(K, [caller, Idempotency-Key]))[:22]`, so every
replica derives the same id for the same caller and key, and nobody without K can predict one.
K is derived from the LiveKit API secret (HMAC as the KDF, with a label of its own): every replica
already holds that secret and it never leaves the gateway, so idempotency needs no new setting
and no new secret to distribute, while the label keeps this use apart from LiveKit's.

The session's room name contains the user and agent, so a repeat with another user or agent would
land in another room, where nothing records the first request. The request is therefore first
*claimed* in a room named after the session id alone: LiveKit's CreateRoom is idempotent (an
existing room is returned unchanged), so whichever replica creates the claim first fixes the
request, and every later one reads it back and compares. The claim room is never joined;
LiveKit closes it after its empty timeout, set a little past the session's end.

DELETE marks the claim `ended` (the room stays), so a replay of the key answers 409 instead of
creating the session room again. Deleting the claim would not do: a replay would claim afresh.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime

from pydantic import BaseModel, Field, SecretStr, ValidationError

from ..access.caller import Caller
from ..errors import FieldError, IdempotencyConflict, InvalidRequest, SessionEnded
from ..ids import new_claim_nonce
from ..livekit import api
from ..livekit.rooms import LiveKitRooms, RoomNotFound
from ..vocabulary import IDEMPOTENCY_KEY_PATTERN, SESSION_ID_PREFIX, claim_room_name
from .record import SessionRecord, now_to_the_second, record_of

HEADER = "Idempotency-Key"
KDF_LABEL = b"voice-gateway/idempotency-key/v1"
_KEY_PATTERN = re.compile(IDEMPOTENCY_KEY_PATTERN)
# How long a claim outlives its session: a repeat after the session ended must not start anew
# while the reaper has not yet deleted the old room.
CLAIM_GRACE_S = 120
MAX_EMPTY_TIMEOUT_S = 2**32 - 1  # a uint32 in LiveKit's CreateRoomRequest


class Claim(BaseModel):
    """What a claim room holds. Wrapped so its metadata never parses as a session record; the
    nonce tells the replica whose CreateRoom made the claim from those that found it."""

    idempotency_claim: SessionRecord
    # Set by DELETE: the session is over for good, whatever a replay of its key asks.
    ended: bool = False
    nonce: str = Field(default_factory=new_claim_nonce)


class SessionIds:
    """Derives session ids from a caller and an Idempotency-Key."""

    def __init__(self, livekit_api_secret: SecretStr) -> None:
        secret = livekit_api_secret.get_secret_value().encode()
        self._key = hmac.new(secret, KDF_LABEL, hashlib.sha256).digest()

    def session_id(self, caller: str, idempotency_key: str) -> str:
        message = json.dumps([caller, idempotency_key]).encode()  # unambiguous framing
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return SESSION_ID_PREFIX + base64.urlsafe_b64encode(digest).decode()[:22]


def key_of(values: Sequence[str]) -> str | None:
    """The request's key, from the values of its `Idempotency-Key` headers; None without one."""
    if len(set(values)) > 1:  # which one was meant is a guess, and a wrong guess replays another
        raise _invalid_key("must be sent once")
    if values and not _KEY_PATTERN.match(values[0]):
        raise _invalid_key("must be 1-255 visible ASCII characters")
    return values[0] if values else None


def _invalid_key(message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid header: {HEADER}", field_errors=[FieldError(HEADER, message)])


def stored_claim(metadata: str) -> Claim | None:
    try:
        return Claim.model_validate_json(metadata)
    except ValidationError:
        return None


def ended_claim(record: SessionRecord) -> str:
    """The metadata of a claim whose session was ended (its nonce is never compared again)."""
    return Claim(idempotency_claim=record, ended=True).model_dump_json()


def claim_empty_timeout(record: SessionRecord, now: datetime) -> int:
    """Until a little past `expires_at`: LiveKit counts a never-joined room's empty timeout from
    its creation, and UpdateRoomMetadata does not restart it, so an `ended` mark lasts at least as
    long as the session's tokens could (and past `expires_at` a replay is refused anyway). Only once
    the claim has closed, `CLAIM_GRACE_S` after `expires_at`, is the key forgotten: a replay then
    starts a new session, with a new `expires_at`, as any unused key would.
    """
    seconds = (record.expires_at - now).total_seconds() + CLAIM_GRACE_S
    return min(MAX_EMPTY_TIMEOUT_S, max(1, int(seconds)))


def same_request(stored: SessionRecord, planned: SessionRecord) -> bool:
    """Whether two records answer the same body: user, agent and length of the session."""
    return (
        stored.user_id == planned.user_id
        and stored.agent_id == planned.agent_id
        and stored.expires_at - stored.created_at == planned.expires_at - planned.created_at
    )


async def claim(
    rooms: LiveKitRooms, prefix: str, planned: SessionRecord
) -> tuple[SessionRecord, bool]:
    """The request first made with this key, and whether that first request is this one."""
    now = now_to_the_second()
    ours = Claim(idempotency_claim=planned)
    request = api.CreateRoomRequest(
        name=claim_room_name(prefix, planned.session_id),
        metadata=ours.model_dump_json(),
        empty_timeout=claim_empty_timeout(planned, now),
    )
    stored = stored_claim((await rooms.create(request)).metadata)
    record = stored.idempotency_claim if stored else None
    if record is None or not same_request(record, planned):
        raise IdempotencyConflict("This Idempotency-Key was used with a different request")
    if stored is not None and stored.ended:
        raise SessionEnded(
            "The session this Idempotency-Key created was ended; use a new key for a new session"
        )
    if record.has_expired(now):
        raise IdempotencyConflict("The session this Idempotency-Key created has ended")
    return record, stored is not None and stored.nonce == ours.nonce


async def end_claim(rooms: LiveKitRooms, prefix: str, record: SessionRecord) -> None:
    """Mark the session's claim ended, so a replay of its key cannot revive the session."""
    if record.source != "session":
        return  # token sessions are never claimed
    name = claim_room_name(prefix, record.session_id)
    # No claim room: created without an Idempotency-Key, or closed: there is nothing to replay.
    with suppress(RoomNotFound):
        await rooms.update_metadata(name, ended_claim(record))


def check_created(room: api.Room, prefix: str, record: SessionRecord) -> None:
    """The session room CreateRoom returned must hold the claimed request, not another one."""
    found = record_of(room.name, room.metadata, prefix)
    if found is None or found.as_created() != record:
        raise IdempotencyConflict("The session this Idempotency-Key names holds another request")


def scope_of(caller: Caller) -> str:
    """Who the caller is scopes its keys: two callers' equal keys are unrelated."""
    return f"{caller.kind.value}:{caller.subject or caller.key_id or ''}"
