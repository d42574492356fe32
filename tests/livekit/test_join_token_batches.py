"""Join tokens asked for at once are signed in one thread hop; each request gets its own answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import cast

import anyio
import anyio.lowlevel
import jwt
import pytest
from anyio.abc import TaskGroup
from livekit import api
from pydantic import SecretStr

from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.livekit.join_tokens import JoinGrant, TokenSigner, _Signing


def grant_for(room_name: str, metadata: str = "") -> JoinGrant:
    now = datetime.now(UTC).replace(microsecond=0)
    config = api.RoomConfiguration(name=room_name)
    return JoinGrant("nate", room_name, config, now, now + timedelta(hours=1), metadata=metadata)


async def test_a_signing_that_fails_fails_only_its_own_request() -> None:
    unserialisable = cast(str, object())  # json cannot encode it: to_jwt raises TypeError
    tokens: dict[str, str] = {}
    failed: dict[str, Exception] = {}

    async with anyio.create_task_group() as hops:
        signer = TokenSigner(API_KEY, SecretStr(API_SECRET), anyio.CapacityLimiter(2), hops)

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


class WatchedSigner(TokenSigner):
    """Counts the batches that reach a worker thread and how many are there at once; each
    stays a while, so a second batch would overlap it if it were sent."""

    def __init__(self, hops: TaskGroup, hold_s: float = 0.2) -> None:
        super().__init__(API_KEY, SecretStr(API_SECRET), anyio.CapacityLimiter(4), hops)
        self.hold_s = hold_s
        self.batch_sizes: list[int] = []
        self.in_threads = self.most_in_threads = 0

    def _sign_all(self, batch: list[_Signing]) -> None:
        self.in_threads += 1
        self.most_in_threads = max(self.most_in_threads, self.in_threads)
        self.batch_sizes.append(len(batch))
        time.sleep(self.hold_s)
        super()._sign_all(batch)
        self.in_threads -= 1


async def test_one_batch_is_in_the_threads_at_a_time_and_the_next_gathers_meanwhile() -> None:
    tokens: list[str] = []
    async with anyio.create_task_group() as hops:
        signer = WatchedSigner(hops)

        async def sign(room_name: str) -> None:
            tokens.append(await signer.sign(grant_for(room_name)))

        async with anyio.create_task_group() as signings:
            signings.start_soon(sign, "first")
            await anyio.sleep(0.05)  # the first batch is in its thread now
            for wave in range(3):  # asked for over three passes of the loop, not one
                signings.start_soon(sign, f"later-{wave}-a")
                signings.start_soon(sign, f"later-{wave}-b")
                await anyio.sleep(0.02)

    assert signer.most_in_threads == 1
    assert signer.batch_sizes == [1, 6]
    assert len(tokens) == 7


async def test_a_token_asked_for_is_signed_while_its_asker_does_something_else() -> None:
    # As a session's token while its CreateRoom call is out: no one waits on it meanwhile.
    async with anyio.create_task_group() as hops:
        signer = TokenSigner(API_KEY, SecretStr(API_SECRET), anyio.CapacityLimiter(2), hops)
        pending = signer.start(grant_for("room-a"))
        readiness = [pending.ready]
        await anyio.sleep(0.2)
        readiness.append(pending.ready)
        signed = await pending.token()
    assert readiness == [False, True]
    claims = jwt.decode(signed, API_SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert claims["video"]["room"] == "room-a"


async def test_tokens_no_one_waits_for_yet_gather_into_one_batch() -> None:
    # Sessions whose CreateRoom calls are out: their tokens share one hop, not one hop each.
    async with anyio.create_task_group() as hops:
        signer = WatchedSigner(hops, hold_s=0)
        pending = []
        for room_name in ("room-a", "room-b", "room-c"):  # over three passes of the loop
            pending.append(signer.start(grant_for(room_name)))
            await anyio.lowlevel.checkpoint()
        tokens = [await each.token() for each in pending]
    assert signer.batch_sizes == [3]
    assert len(set(tokens)) == 3


class BrokenHop(TokenSigner):
    """A hop that fails as a whole (not one signing in it): the worker threads gone, say."""

    def _sign_all(self, batch: list[_Signing]) -> None:
        raise RuntimeError("no worker thread")


async def test_a_hop_that_fails_fails_its_requests_and_the_signer_goes_on() -> None:
    async with anyio.create_task_group() as hops:
        signer = BrokenHop(API_KEY, SecretStr(API_SECRET), anyio.CapacityLimiter(2), hops)
        for room_name in ("room-a", "room-b"):  # one batch after another
            with pytest.raises(RuntimeError, match="not signed"):
                await signer.sign(grant_for(room_name))
    # and the task group the hops ran in ended normally: no error escaped into it
