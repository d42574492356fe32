"""Join tokens asked for at once are signed in one thread hop; each request gets its own answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import anyio
import jwt
from livekit import api
from pydantic import SecretStr

from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.livekit.join_tokens import JoinGrant, TokenSigner


def grant_for(room_name: str, metadata: str = "") -> JoinGrant:
    now = datetime.now(UTC).replace(microsecond=0)
    config = api.RoomConfiguration(name=room_name)
    return JoinGrant("nate", room_name, config, now, now + timedelta(hours=1), metadata=metadata)


async def test_a_signing_that_fails_fails_only_its_own_request() -> None:
    signer = TokenSigner(API_KEY, SecretStr(API_SECRET), anyio.CapacityLimiter(2))
    unserialisable = cast(str, object())  # json cannot encode it: to_jwt raises TypeError
    tokens: dict[str, str] = {}
    failed: dict[str, Exception] = {}

    async def sign(room_name: str, metadata: str = "") -> None:
        try:
            tokens[room_name] = await signer.sign(grant_for(room_name, metadata))
        except TypeError as exc:
            failed[room_name] = exc

    async with anyio.create_task_group() as signings:  # one pass of the loop: one batch
        signings.start_soon(sign, "room-a")
        signings.start_soon(sign, "room-bad", unserialisable)
        signings.start_soon(sign, "room-b")

    assert set(failed) == {"room-bad"}
    for room_name in ("room-a", "room-b"):
        claims = jwt.decode(tokens[room_name], API_SECRET, algorithms=["HS256"], issuer=API_KEY)
        assert claims["video"]["room"] == room_name
