"""One LiveKit API call, as the gateway makes every one: awaited, bounded by a deadline, errors
translated, timed in the metrics.

RoomService and AgentDispatchService are Twirp: a protobuf request (`livekit-api`'s messages) is
POSTed over the gateway's one connection pool (`twirp_pool.py`) with a token signed off the loop
(`api_tokens.py`), and the answer parsed into the message asked for. Every call runs under a
deadline (`asyncio.timeout`; anyio's `fail_after` costs twice as much in a request's task, which
anyio must first register: bench/README.md, measured decisions), and every way it can fail
(refused connection, deadline, an error answer, something that is not LiveKit answering) becomes
one of the gateway's domain errors, so no transport or Twirp error ever reaches a handler.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, TypeVar

import anyio
from google.protobuf.message import DecodeError, Message

from ..errors import GatewayError, LiveKitBusy, LiveKitError, LiveKitTimeout, LiveKitUnavailable
from ..ops.metrics import Metrics
from ..settings import Settings
from .api_tokens import ServiceTokens
from .twirp_pool import TWIRP_MEDIA_TYPE, NotHttp, TwirpAnswer, TwirpPool, Unreachable

M = TypeVar("M", bound=Message)

ROOM_SERVICE = "livekit.RoomService"
AGENT_DISPATCH_SERVICE = "livekit.AgentDispatchService"
# What the server answers (503 `unavailable`, after psrpc's 3 s) when no node holds the room an
# RPC is routed to: the room does not exist (docs/livekit-observed.md, ListDispatch).
NO_NODE_HOLDS_THE_ROOM = "no response from servers"
# LiveKit (or a proxy before it) shedding load: the caller may retry, unlike a 500.
BUSY_STATUSES = frozenset({429, 503})


class RoomNotFound(Exception):
    """LiveKit answered `not_found`: the room (or participant) does not exist."""


class LiveKitCalls:
    def __init__(
        self, pool: TwirpPool, settings: Settings, tokens: ServiceTokens, metrics: Metrics
    ) -> None:
        self._pool = pool
        self._timeout_s = settings.livekit_timeout_s
        self._tokens = tokens
        self._metrics = metrics

    async def __call__(
        self,
        method: str,
        request: Message,
        answer: type[M],
        admin_of_room: str | None = None,
        service: str = ROOM_SERVICE,
    ) -> M:
        """`service`'s `method` with `request`, carrying the service token, or with
        `admin_of_room` a token with roomAdmin for that one room (what participant and dispatch
        calls need); LiveKit's answer as an `answer`."""
        started, outcome = time.perf_counter(), "ok"
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._call(
                    f"/twirp/{service}/{method}", request, answer, admin_of_room
                )
        except TimeoutError as exc:
            outcome = "livekit_timeout"
            raise LiveKitTimeout(f"LiveKit did not answer within {self._timeout_s:g} s") from exc
        except (GatewayError, RoomNotFound) as exc:
            outcome = "not_found" if isinstance(exc, RoomNotFound) else exc.code
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"  # the request ended (client gone, shutdown), not LiveKit
            raise
        except BaseException:
            outcome = "error"  # a bug: the request answers 500; the call must not read "ok"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.livekit_call_series(method, outcome).observe(elapsed)

    async def _call(
        self, path: str, request: Message, answer: type[M], admin_of_room: str | None
    ) -> M:
        if admin_of_room is not None:
            token = await self._tokens.room_admin_token(admin_of_room)
        else:
            token = await self._tokens.service_token()
        try:
            reply = await self._pool.post(path, token, request.SerializeToString())
        except Unreachable as exc:
            raise LiveKitUnavailable(f"LiveKit could not be reached: {exc.why}") from exc
        except NotHttp as exc:
            raise LiveKitError("What answers at the LiveKit URL does not speak HTTP") from exc
        return _read(reply, answer)


def _read(reply: TwirpAnswer, answer: type[M]) -> M:
    if reply.status != 200:
        raise _translate_error(reply)
    if reply.content_type != TWIRP_MEDIA_TYPE:
        # Not the URL: this detail reaches callers, and where LiveKit runs is not theirs. Any
        # 200 would parse as an empty message, so a catch-all backend would look like a LiveKit
        # with no rooms.
        raise LiveKitError(
            "What answers at the LiveKit URL is not LiveKit: "
            f"HTTP 200 with Content-Type {reply.content_type!r}"
        )
    try:
        return answer.FromString(reply.body)
    except DecodeError as exc:
        problem = "LiveKit answered with a body that is not the message asked for"
        raise LiveKitError(problem) from exc


def _translate_error(reply: TwirpAnswer) -> Exception:
    """A Twirp error is a JSON object with `code` and `msg`; a proxy may send anything else."""
    error = _json_object(reply.body)
    code, message = str(error.get("code") or "unknown"), str(error.get("msg") or "")
    if code == "not_found" or (code == "unavailable" and NO_NODE_HOLDS_THE_ROOM in message):
        return RoomNotFound(message)
    if reply.status == 401:
        return LiveKitError("LiveKit rejected the gateway's API key or secret (HTTP 401)")
    if reply.status in BUSY_STATUSES:
        return LiveKitBusy(f"LiveKit is busy (HTTP {reply.status}); try again shortly")
    return LiveKitError(f"LiveKit answered HTTP {reply.status} ({code})")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # nested deeper than the decoder goes: not JSON either
        return {}
    return data if isinstance(data, dict) else {}
