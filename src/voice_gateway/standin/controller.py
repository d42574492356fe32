"""`StandIn`: runs the stand-in server and gives tests their hooks into it.

Two ways to run it:
- `start()` / `stop()` (or `with StandIn() as s:`): in a background thread with its own event
  loop, so synchronous code and tests on any other loop can use it. Only this mode has
  `refuse_connections()` / `accept_connections()`.
- `async with StandIn() as s:` or `await s.serve()`: in the running loop, beside other servers.

The hooks (faults, participants, inspection) work in both modes and from any thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from livekit.protocol.agent_dispatch import AgentDispatch, RoomAgentDispatch
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import CreateRoomRequest

from .agent_workers import AgentWorkers
from .calls import TwirpCall
from .join import join_with_token
from .server import Listener, bind_socket, standin_config
from .state import StandInState
from .twirp import TwirpError
from .webhooks import WebhookDelivery

T = TypeVar("T")
LOOP_CALL_TIMEOUT_S = 15.0
INJECTED_FAILURE_MSG = "LiveKit stand-in: injected failure"


class StandIn:
    def __init__(
        self,
        api_key: str = "devkey",
        api_secret: str = "secret",  # noqa: S107  # LiveKit's own --dev pair, public by design
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_keys: Mapping[str, str] | None = None,
        close_empty_rooms: bool = True,
        webhook_urls: Iterable[str] = (),
        no_response_after_s: float = 3.0,
    ) -> None:
        """`port=0` takes a free port (kept across refuse/accept and restarts);
        `close_empty_rooms=False` keeps rooms past their empty and departure timeouts;
        `webhook_urls` receive signed webhooks, as the server's `webhook.urls`;
        `no_response_after_s` is how long a dispatch call about a missing room takes to fail
        (psrpc's 3 s on the real server)."""
        keys = {api_key: api_secret, **(extra_keys or {})}
        self.state = StandInState(
            keys,
            close_empty_rooms=close_empty_rooms,
            webhook_urls=tuple(webhook_urls),
            no_response_after_s=no_response_after_s,
        )
        self.host = host
        self.port = port
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- background-thread mode --------------------------------------------------------------

    def start(self) -> None:
        """Serves from a background thread; returns once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the LiveKit stand-in is already started")
        self._loop = _new_event_loop()
        self._thread = threading.Thread(
            target=_run_loop, args=(self._loop,), name="livekit-standin", daemon=True
        )
        self._thread.start()
        try:
            self._on_loop(self._listen())
        except BaseException:
            self._end_loop()
            raise

    def stop(self) -> None:
        """Stops serving (hung calls answer 503) and ends the thread; safe to call twice."""
        if self._loop is None:
            return
        try:
            self._on_loop(self._unlisten())
        finally:
            self._end_loop()

    def refuse_connections(self) -> None:
        """Closes the listening socket and open connections; new connections are refused."""
        self._on_loop(self._unlisten())

    def accept_connections(self) -> None:
        """Listens again on the same port with the same state; a no-op while listening."""
        self._on_loop(self._listen())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- in-loop mode ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._unlisten()

    async def serve(self) -> None:
        """Serves in the running loop until cancelled."""
        async with self:
            await asyncio.Event().wait()

    # -- faults ------------------------------------------------------------------------------

    def set_latency(self, seconds: float, *, after: bool = False) -> None:
        """Every Twirp call answers `seconds` later (awaited, never blocking the loop).

        By default the call waits before it is handled; with `after=True` it takes effect at
        once and only the answer is late (LiveKit did it, the caller gave up waiting)."""
        self.state.faults.set_latency(seconds, after=after)

    def fail_next(
        self,
        status: int = 503,
        code: str = "unavailable",
        msg: str = INJECTED_FAILURE_MSG,
        times: int | None = None,
        *,
        meta: Mapping[str, str] | None = None,
    ) -> None:
        """Answers Twirp calls with this Twirp JSON error: the next `times` ones, or every
        one until `clear_faults()` when `times` is None."""
        error = TwirpError(code, msg, meta=meta, status=status)
        self.state.faults.fail_next(error, times)

    def hang(self) -> None:
        """Twirp calls never answer, until `clear_faults()` or a stop (then they answer 503)."""
        self.state.faults.hanging = True

    def clear_faults(self) -> None:
        """No latency, no failures, no hang; calls hung now carry on normally."""
        self.state.faults.clear()

    def reset(self) -> None:
        """Clears faults, agent workers, rooms, the call record and the webhook deliveries."""
        self.clear_faults()
        self.agents.reset()
        self.state.store.clear()
        self.state.calls.clear()
        self.state.webhooks.clear()

    # -- rooms and participants --------------------------------------------------------------

    def create_room(
        self, name: str, *, metadata: str = "", agents: Iterable[RoomAgentDispatch] = ()
    ) -> Room:
        """As CreateRoom would, without a client (and without its grant or limit checks)."""
        request = CreateRoomRequest(name=name, metadata=metadata, agents=agents)
        return self.state.store.create_room(request)

    def add_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        kind: ParticipantInfo.Kind = ParticipantInfo.STANDARD,
        state: ParticipantInfo.State = ParticipantInfo.ACTIVE,
        metadata: str = "",
        is_publisher: bool = False,
    ) -> ParticipantInfo:
        """A fake participant with a `PA_` sid, joined now; creates the room if needed."""
        participant = ParticipantInfo(
            identity=identity,
            name=name,
            kind=kind,
            state=state,
            metadata=metadata,
            is_publisher=is_publisher,
        )
        return self.state.store.add_participant(room, participant)

    def remove_participant(self, room: str, identity: str) -> bool:
        """The participant leaves; False if there was none."""
        return self.state.store.remove_participant(room, identity)

    def join(self, token: str) -> ParticipantInfo:
        """A client connects with a join token, as `/rtc` would decide it: the token is checked,
        a room that does not exist yet is created from the token's room configuration (agents,
        timeouts, metadata), and the participant joins. Raises JoinRefused as the server would
        refuse the connection."""
        return join_with_token(self.state.store, token, self.state.api_keys)

    @property
    def rooms(self) -> dict[str, Room]:
        """A snapshot of the live rooms by name."""
        return {room.name: room for room in self.state.store.list_rooms()}

    def has_room(self, name: str) -> bool:
        return self.state.store.get_room(name) is not None

    def get_room(self, name: str) -> Room:
        """A copy of the live room; KeyError when there is none."""
        return _found(self.state.store.get_room(name), name)

    def get_create_request(self, name: str) -> CreateRoomRequest:
        """The CreateRoomRequest that created the room; KeyError when there is none."""
        return _found(self.state.store.get_request(name), name)

    def get_room_agents(self, name: str) -> list[RoomAgentDispatch]:
        """The agent dispatches requested when the room was created."""
        return list(self.get_create_request(name).agents)

    def list_participants(self, room: str) -> list[ParticipantInfo]:
        return self.state.store.list_participants(room)

    def close_idle_rooms(self, now: float | None = None) -> list[str]:
        """Runs the empty/departure-timeout check now (optionally as of `now`)."""
        return self.state.store.close_idle_rooms(time.time() if now is None else now)

    # -- agents ------------------------------------------------------------------------------

    @property
    def agents(self) -> AgentWorkers:
        """The simulated agent workers: `serve(name, join_after_s=...)`, `never_join(name)`,
        `fail(name)`, `stop_serving(name)`, `leave(room)`, `reset()`. None by default: a room's
        dispatches then never get a job, as with no worker registered on the real server."""
        return self.state.agents

    def list_dispatches(self, room: str) -> list[AgentDispatch]:
        """The room's agent dispatches with their jobs; KeyError when there is no such room."""
        return _found(self.state.store.list_dispatches(room), room)

    # -- webhooks ----------------------------------------------------------------------------

    def set_webhook_urls(self, urls: Iterable[str]) -> None:
        """Where later events are sent (none: no webhooks); events already queued keep theirs."""
        self.state.webhooks.set_urls(urls)

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST so far (the latest 1 000), oldest first, with its answer."""
        return self.state.webhooks.deliveries()

    # -- the call record ---------------------------------------------------------------------

    def requests_count(self, method: str) -> int:
        """How many calls to this RoomService method arrived, whatever their outcome."""
        return self.state.calls.count(method)

    def requests(self, method: str | None = None) -> list[TwirpCall]:
        """The recorded calls (the latest 10 000), optionally of one method, oldest first."""
        return self.state.calls.calls(method)

    # -- internals ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._listener is not None:
            return
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        listener = Listener(standin_config(self.state, self.host, self.port), self.state)
        await listener.open(sock)
        self._listener = listener

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the LiveKit stand-in is not started (call start() first)")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=LOOP_CALL_TIMEOUT_S)

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=LOOP_CALL_TIMEOUT_S)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional speed-up, as uvicorn's loop="auto"
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _found(value: T | None, name: str) -> T:
    if value is None:
        raise KeyError(f"no room named {name!r} in the LiveKit stand-in")
    return value
