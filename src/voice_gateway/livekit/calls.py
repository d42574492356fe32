"""One LiveKit API call, as the gateway makes every one: awaited, bounded by a deadline, errors
translated, timed in the metrics.

`livekit-api`'s services (RoomService, AgentDispatchService) are coroutines over aiohttp, so they
are awaited on the event loop, never pushed to a thread. Every call runs under `anyio.fail_after`,
and every way it can fail (refused connection, deadline, an error answer) becomes one of the
gateway's domain errors, so no aiohttp or Twirp exception ever reaches a handler.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import anyio
from google.protobuf.message import DecodeError
from livekit import api

from ..errors import GatewayError, LiveKitBusy, LiveKitError, LiveKitTimeout, LiveKitUnavailable
from ..ops.metrics import Metrics
from ..settings import Settings
from .api_tokens import ServiceTokens
from .twirp_answers import NotLiveKit

T = TypeVar("T")
ApiCall = Callable[[api.LiveKitAPI], Awaitable[T]]

# What the server answers (503 `unavailable`, after psrpc's 3 s) when no node holds the room an
# RPC is routed to: the room does not exist (docs/livekit-observed.md, ListDispatch).
NO_NODE_HOLDS_THE_ROOM = "no response from servers"
# LiveKit (or a proxy before it) shedding load: the caller may retry, unlike a 500.
BUSY_STATUSES = frozenset({429, 503})


class RoomNotFound(Exception):
    """LiveKit answered `not_found`: the room (or participant) does not exist."""


class LiveKitCalls:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        tokens: ServiceTokens,
        metrics: Metrics,
    ) -> None:
        self._session = session
        self._url = settings.livekit_url
        self._timeout_s = settings.livekit_timeout_s
        self._tokens = tokens
        self._metrics = metrics
        self._livekit: api.LiveKitAPI | None = None
        self._livekit_token = ""

    async def __call__(self, method: str, call: ApiCall[T], admin_of_room: str | None = None) -> T:
        """`call` on a client carrying the service token, or with `admin_of_room` a token with
        roomAdmin for that one room (what participant and dispatch calls need)."""
        started, outcome = time.perf_counter(), "ok"
        try:
            with anyio.fail_after(self._timeout_s):
                livekit = await self._api(admin_of_room)
                return await self._translated(call(livekit))
        except TimeoutError as exc:
            outcome = "livekit_timeout"
            raise LiveKitTimeout(f"LiveKit did not answer within {self._timeout_s:g} s") from exc
        except (GatewayError, RoomNotFound) as exc:
            outcome = "not_found" if isinstance(exc, RoomNotFound) else exc.code
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.livekit_calls.labels(method, outcome).observe(elapsed)

    async def _api(self, admin_of_room: str | None) -> api.LiveKitAPI:
        """The SDK's client over the shared pool, carrying a token signed off the loop."""
        if admin_of_room is not None:
            return self._client(await self._tokens.room_admin_token(admin_of_room))
        token = await self._tokens.service_token()
        if self._livekit is None or self._livekit_token != token:
            self._livekit, self._livekit_token = self._client(token), token
        return self._livekit

    def _client(self, token: str) -> api.LiveKitAPI:
        # A view over the shared session: no pool of its own, nothing to close.
        return api.LiveKitAPI.with_token(token, self._url, session=self._session, failover=False)

    async def _translated(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except TimeoutError:
            raise  # aiohttp's timeouts are ClientErrors too, but they mean a deadline passed
        except aiohttp.ClientError as exc:
            raise LiveKitUnavailable(
                f"LiveKit could not be reached: {why_unreachable(exc)}"
            ) from exc
        except api.ServerError as exc:
            raise _translate_server_error(exc) from exc
        except NotLiveKit as exc:
            # Not the URL: this detail reaches callers, and where LiveKit runs is not theirs.
            raise LiveKitError(f"What answers at the LiveKit URL is not LiveKit: {exc}") from exc
        except DecodeError as exc:
            problem = "LiveKit answered with a body that is not the message asked for"
            raise LiveKitError(problem) from exc


def _translate_server_error(exc: api.ServerError) -> Exception:
    if exc.code == "not_found" or _no_node_holds_the_room(exc):
        return RoomNotFound(exc.message)
    if exc.status == 401:
        return LiveKitError("LiveKit rejected the gateway's API key or secret (HTTP 401)")
    if exc.status in BUSY_STATUSES:
        return LiveKitBusy(f"LiveKit is busy (HTTP {exc.status}); try again shortly")
    return LiveKitError(f"LiveKit answered HTTP {exc.status} ({exc.code})")


def _no_node_holds_the_room(exc: api.ServerError) -> bool:
    return exc.code == "unavailable" and NO_NODE_HOLDS_THE_ROOM in (exc.message or "")


def why_unreachable(exc: BaseException) -> str:
    """Why a connection to LiveKit failed, in words (an exception class says nothing to most)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or _errno(cause) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "its host name does not resolve"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed"
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return "it closed the connection without answering"
        cause = cause.__cause__ or getattr(cause, "os_error", None)
    return f"the connection failed ({type(exc).__name__})"


def _errno(error: BaseException) -> int | None:
    # asyncio reports a refused connect as a plain OSError when it tried several addresses.
    return error.errno if isinstance(error, OSError) else None
