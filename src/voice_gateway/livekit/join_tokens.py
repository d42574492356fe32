"""Join tokens: the SDK's synchronous signing and verifying, always run in the worker threads.

`AccessToken.to_jwt` and `TokenVerifier.verify` are plain CPU-bound functions. They run through
`anyio.to_thread.run_sync` with the service layer's shared `CapacityLimiter`, never on the loop.

Join tokens asked for together are signed together, in one thread hop (`_Batch`): each hop is a
wake-up of a worker thread and GIL hand-offs with the loop, and under load one hop per token kept
every worker busy handing the GIL back and forth while requests queued for them. One hop is in
the worker threads at a time (bench/README.md, measured decisions).

`start` asks for a token without waiting for it: a batch's hop runs in the signer's own task
group, so a session's token is signed while its CreateRoom call is out, and is there when LiveKit
answers. Waiting for the token before the call put every request of a batch on the call at once,
and under a slow LiveKit kept them in step: waves of requests the loop worked through back to back.
A batch gathers until someone waits for one of its tokens, it holds `BATCH_MOST` tokens, or
`GATHER_MOST_S` passes (a slow LiveKit then gets one hop for many sessions, not one each); then for
as long as the batch before it is in its thread.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup
from google.protobuf.message import Message
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_encode
from pydantic import SecretStr

from ..ids import new_token_id
from . import api
from .api import Claims, snake_to_lower_camel
from .proto_json import message_dict

logger = logging.getLogger("voice_gateway.livekit")


@dataclass(frozen=True)
class JoinGrant:
    """Everything a join token says: who, which room, for how long, with which room set-up."""

    identity: str
    room_name: str
    room_config: api.RoomConfiguration
    issued_at: datetime
    expires_at: datetime
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class _Signing:
    grant: JoinGrant
    token: str = ""
    error: Exception | None = None

    def result(self) -> str:
        if self.error is not None:
            raise self.error
        if not self.token:  # the batch ended without reaching it: never a token-less 201
            raise RuntimeError("the join token was not signed")
        return self.token


@dataclass
class _Batch:
    """The signings asked for until the batch goes to its hop, and one event for all of them (an
    event per signing cost more than its signing's share of the hop)."""

    signings: list[_Signing]
    done: anyio.Event = field(default_factory=anyio.Event)
    wanted: anyio.Event = field(default_factory=anyio.Event)  # someone waits: gather no longer


@dataclass(frozen=True)
class PendingToken:
    """A join token being signed."""

    _signing: _Signing
    _batch: _Batch

    @property
    def ready(self) -> bool:
        return self._batch.done.is_set()

    async def token(self) -> str:
        if not self.ready:  # a set Event's wait() would still cost a loop pass
            self._batch.wanted.set()
            await self._batch.done.wait()
        return self._signing.result()


BATCH_MOST = 32  # a batch this big (~1 ms of the GIL) goes without waiting to be wanted
GATHER_MOST_S = 0.05  # how long a batch no one waits for yet gathers


class TokenSigner:
    def __init__(
        self,
        api_key: str,
        api_secret: SecretStr,
        limiter: anyio.CapacityLimiter,
        hops: TaskGroup,
    ):
        self._api_key = api_key
        self._api_secret = api_secret
        self._hs256 = HS256(api_secret.get_secret_value())
        self._limiter = limiter
        self._hops = hops  # where each batch waits for its turn and its worker thread
        self._batch: _Batch | None = None  # gathering, not yet in a worker thread
        # One batch in the worker threads at a time: batches in several threads at once
        # contended with the loop and each other for the GIL (bench/README.md, measured
        # decisions); a batch gathered meanwhile goes next, bigger.
        self._one_hop_at_a_time = anyio.Lock()

    async def sign(self, grant: JoinGrant) -> str:
        return await self.start(grant).token()

    def start(self, grant: JoinGrant) -> PendingToken:
        """The token joins the batch gathering, or starts one; it is signed whatever becomes
        of the request that asked for it (the others of its batch wait on the same hop)."""
        signing = _Signing(grant)
        if (batch := self._batch) is not None:
            batch.signings.append(signing)
            if len(batch.signings) >= BATCH_MOST:
                batch.wanted.set()
        else:
            self._batch = batch = _Batch([signing])
            self._hops.start_soon(self._sign_batch, batch)
        return PendingToken(signing, batch)

    async def _sign_batch(self, batch: _Batch) -> None:
        """In its own task: the batch gathers until it is wanted (or full, or old), and then
        until the batch before it is back from its thread."""
        try:
            with anyio.move_on_after(GATHER_MOST_S):
                await batch.wanted.wait()
            async with self._one_hop_at_a_time:
                self._batch = None  # later ones start a batch of their own
                signings, limiter = batch.signings, self._limiter
                await anyio.to_thread.run_sync(self._sign_all, signings, limiter=limiter)
        except Exception:  # its requests fail ("not signed"), not the signer's task group
            logger.exception("a batch of %d join tokens could not be signed", len(batch.signings))
        finally:
            batch.done.set()

    def _sign_all(self, batch: list[_Signing]) -> None:
        for signing in batch:
            try:
                signing.token = self._sign_blocking(signing.grant)
            except Exception as exc:  # each request gets its own error back
                signing.error = exc

    async def verify(self, token: str) -> Claims:
        verifier = api.TokenVerifier(self._api_key, self._api_secret.get_secret_value())
        return await anyio.to_thread.run_sync(verifier.verify, token, limiter=self._limiter)

    def _sign_blocking(self, grant: JoinGrant) -> str:
        secret = self._api_secret.get_secret_value()
        token = (
            api.AccessToken(self._api_key, secret)
            .with_identity(grant.identity)
            .with_name(grant.name)
            .with_metadata(grant.metadata)
            .with_attributes(grant.attributes)
            .with_grants(_join_only(grant.room_name))
            .with_room_config(grant.room_config)
        )
        # AccessToken.to_jwt stamps nbf/exp from its own clock; the session's expires_at is already
        # in the room metadata and the response, so we sign the SDK's claims with those times.
        claims = claims_of(token.claims)
        claims.update(
            jti=new_token_id(),
            sub=grant.identity,
            iss=self._api_key,
            nbf=epoch_s(grant.issued_at),
            exp=epoch_s(grant.expires_at),
        )
        return self._hs256.encode(claims)


def epoch_s(moment: datetime) -> int:
    """Whole seconds since 1970 (a naive time taken as UTC), as `calendar.timegm` of
    `utctimetuple()` gives them, in a third of its time. In datetime's exact arithmetic: the
    float of `timestamp()` rounds x.999999 up from 2514 on, and `int()` of it rounds toward
    1970 where timegm rounds down."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _SECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _join_only(room_name: str) -> api.VideoGrants:
    """Join this one room and talk in it; no create, list, admin or record rights."""
    return api.VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
    )


class HS256:
    """PyJWT's HS256 with its key prepared once. `jwt.encode` prepares the key on every call
    (its PEM and SSH-key checks) and builds the header anew: 23 -> 10 µs a token (bench/README.md,
    measured decisions). The payload's encoder is built once too (`json.dumps` with separators
    builds one per call), and the MAC is `hmac.digest`, the one-shot C form of the
    `hmac.new(key, msg, sha256).digest()` PyJWT computes. The token is byte for byte
    `jwt.encode`'s (a test holds it so)."""

    HEADER = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')  # jwt.encode's, keys sorted
    # jwt.encode's json.dumps options; claims are never circular, so no check for it either
    PAYLOAD_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)

    def __init__(self, secret: str) -> None:
        self._key = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret)

    def encode(self, claims: dict[str, Any]) -> str:
        payload = base64url_encode(self.PAYLOAD_ENCODER.encode(claims).encode())
        signed = self.HEADER + b"." + payload
        mac = hmac.digest(self._key, signed, "sha256")
        return (signed + b"." + base64url_encode(mac)).decode()


def claims_of(claims: Claims) -> dict[str, Any]:
    """What `Claims.asdict()` gives (camelCase keys, None and "" left out, the room config as
    protobuf JSON), without `dataclasses.asdict`'s deep copy of every value: 43 -> ~10 µs of a
    signing's ~87 (bench/README.md, measured decisions). tests/livekit/test_join_token_claims.py
    holds it equal to the SDK's."""
    return _dict_of(claims)


def _dict_of(value: Any) -> dict[str, Any]:
    shown = {}
    for name, key in _camel_fields(type(value)):
        item = getattr(value, name)
        if item is not None and item != "":
            shown[key] = _plain(item)
    return shown


def _plain(value: Any) -> Any:
    if type(value) in _AS_THEY_ARE:  # most claims: checked first
        return value
    if isinstance(value, Message):
        return message_dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dict_of(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return value


_AS_THEY_ARE = frozenset({str, bool, int, float})
_CAMEL_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _camel_fields(kind: type) -> tuple[tuple[str, str], ...]:
    """A dataclass's (field, claim key) pairs, worked out once per class."""
    if kind not in _CAMEL_FIELDS:
        fields = dataclasses.fields(kind)
        _CAMEL_FIELDS[kind] = tuple((f.name, snake_to_lower_camel(f.name)) for f in fields)
    return _CAMEL_FIELDS[kind]
