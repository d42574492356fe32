"""Rooms and their participants, in memory, shared between the server loop and test threads.

Every public method takes the lock and hands out copies, so a test thread never sees a message
that the server loop is half-way through changing.
"""

from __future__ import annotations

import heapq
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message
from livekit.protocol.agent import Job
from livekit.protocol.agent_dispatch import AgentDispatch
from livekit.protocol.models import Codec, DisconnectReason, ParticipantInfo, Room
from livekit.protocol.room import CreateRoomRequest

from .dispatches import new_dispatch, room_dispatches
from .guid import PARTICIPANT_PREFIX, ROOM_PREFIX, new_guid

# server pkg/config/config.go DefaultConfig; a request field of 0 means "use the default".
DEFAULT_EMPTY_TIMEOUT_S = 300
DEFAULT_DEPARTURE_TIMEOUT_S = 20
DEFAULT_MAX_PARTICIPANTS = 0
ENABLED_CODECS = (
    *("audio/PCMU", "audio/PCMA", "audio/opus", "audio/red"),
    *("video/VP8", "video/H264", "video/VP9", "video/AV1", "video/H265", "video/rtx"),
)
# Agents and egress do not keep a room open (rtc/room.go CloseIfEmpty, IsDependent).
DEPENDENT_KINDS = frozenset({ParticipantInfo.Kind.AGENT, ParticipantInfo.Kind.EGRESS})

M = TypeVar("M", bound=Message)
# Told of each room and participant event, as the server's webhooks are: (event, room, participant).
Listener = Callable[[str, Room, "ParticipantInfo | None"], None]
Event = tuple[str, Room, "ParticipantInfo | None"]
# Told of each agent dispatch created, as a worker pool is: (the room, the dispatch).
DispatchListener = Callable[[Room, AgentDispatch], None]


@dataclass
class RoomRecord:
    room: Room
    request: CreateRoomRequest  # as first received: what dispatch was asked for, and more
    participants: dict[str, ParticipantInfo] = field(default_factory=dict)
    dispatches: dict[str, AgentDispatch] = field(default_factory=dict)
    last_left_at: float = 0.0
    ever_joined: bool = False

    def close_deadline(self) -> float | None:
        """When the server would close this room if nothing changes; None while occupied."""
        if any(p.kind not in DEPENDENT_KINDS for p in self.participants.values()):
            return None
        if self.ever_joined and self.last_left_at:
            return self.last_left_at + self.room.departure_timeout
        return self.room.creation_time + self.room.empty_timeout


class RoomStore:
    def __init__(self, listener: Listener | None = None) -> None:
        """`listener` hears of every room started or finished and participant joined or left,
        outside the lock, after the change."""
        self.listener = listener
        self.dispatch_listener: DispatchListener | None = None
        self._lock = threading.Lock()
        self._rooms: dict[str, RoomRecord] = {}
        self._deadlines: list[tuple[float, str, str]] = []  # (when, room name, room sid)

    def create_room(self, request: CreateRoomRequest) -> Room:
        """The live room of that name unchanged, or a new one with the server's defaults."""
        with self._lock:
            record = self._rooms.get(request.name)
            started = record is None
            if record is None:
                record = self._open_room(request, time.time())
            room, dispatches = _copy(record.room), _copies(record.dispatches.values())
        if started:
            self._tell([("room_started", room, None)])
            self._dispatched(room, dispatches)
        return room

    def get_room(self, name: str) -> Room | None:
        with self._lock:
            record = self._rooms.get(name)
            return None if record is None else _copy(record.room)

    def get_request(self, name: str) -> CreateRoomRequest | None:
        with self._lock:
            record = self._rooms.get(name)
            return None if record is None else _copy(record.request)

    def list_rooms(self, names: Iterable[str] = ()) -> list[Room]:
        wanted = set(names)
        with self._lock:
            return [
                _copy(record.room)
                for name, record in self._rooms.items()
                if not wanted or name in wanted
            ]

    def delete_room(self, name: str) -> bool:
        """Removes the room and with it its participants; False when there was none."""
        with self._lock:
            record = self._rooms.pop(name, None)
        if record is None:
            return False
        self._tell(_finished(record))
        return True

    def update_metadata(self, name: str, metadata: str) -> Room | None:
        with self._lock:
            record = self._rooms.get(name)
            if record is None:
                return None
            record.room.metadata = metadata
            return _copy(record.room)

    def list_participants(self, room: str) -> list[ParticipantInfo]:
        with self._lock:
            record = self._rooms.get(room)
            participants = record.participants.values() if record else ()
            return [_copy(p) for p in participants]

    def get_participant(self, room: str, identity: str) -> ParticipantInfo | None:
        with self._lock:
            record = self._rooms.get(room)
            participant = record.participants.get(identity) if record else None
            return None if participant is None else _copy(participant)

    def add_participant(self, room: str, participant: ParticipantInfo) -> ParticipantInfo:
        """Joins `participant` (replacing one with the same identity), creating the room if
        needed, as a join with auto_create does; fills in sid and join time when unset."""
        joined = _joining(participant, time.time())
        events: list[Event] = []
        with self._lock:
            record = self._rooms.get(room)
            opened = record is None
            if record is None:
                record = self._open_room(CreateRoomRequest(name=room), time.time())
                events.append(("room_started", _copy(record.room), None))
            events += _add(record, joined)
            live_room = _copy(record.room)
            dispatches = _copies(record.dispatches.values()) if opened else []
        self._tell(events)
        self._dispatched(live_room, dispatches)
        return _copy(joined)

    def join_agent(self, room: Room, participant: ParticipantInfo) -> bool:
        """An agent joins `room` if it still lives (same sid); False when it ended meanwhile."""
        joined = _joining(participant, time.time())
        with self._lock:
            record = self._rooms.get(room.name)
            if record is None or record.room.sid != room.sid:
                return False
            events = _add(record, joined)
        self._tell(events)
        return True

    def join(self, request: CreateRoomRequest, participant: ParticipantInfo) -> ParticipantInfo:
        """A join that may create the room: from `request` when it does not exist yet (a
        token's room configuration), unchanged when it does, as the server's getOrCreateRoom."""
        with self._lock:
            record = None if request.name in self._rooms else self._open_room(request, time.time())
            room = None if record is None else _copy(record.room)
            dispatches = [] if record is None else _copies(record.dispatches.values())
        if room is not None:
            self._tell([("room_started", room, None)])
            self._dispatched(room, dispatches)
        return self.add_participant(request.name, participant)

    def remove_participant(
        self, room: str, identity: str, reason: int = DisconnectReason.UNKNOWN_REASON
    ) -> bool:
        with self._lock:
            record = self._rooms.get(room)
            left = record.participants.pop(identity, None) if record else None
            if record is None or left is None:
                return False
            left.disconnect_reason = reason  # type: ignore[assignment]  # an enum value
            record.last_left_at = time.time()
            _count_participants(record)
            self._schedule(record)
            event: Event = ("participant_left", _copy(record.room), left)
        self._tell([event])
        return True

    def list_dispatches(self, room: str, dispatch_id: str = "") -> list[AgentDispatch] | None:
        """The room's dispatches (one, by id, if given) with their jobs; None without the room."""
        with self._lock:
            record = self._rooms.get(room)
            if record is None:
                return None
            return _copies(d for d in record.dispatches.values() if dispatch_id in ("", d.id))

    def create_dispatch(self, room: str, agent_name: str, metadata: str) -> AgentDispatch:
        """A dispatch added to the room, created first if needed (as the server's auto_create)."""
        self.create_room(CreateRoomRequest(name=room))
        with self._lock:
            record = self._rooms[room]
            dispatch = new_dispatch(room, agent_name, metadata, time.time_ns())
            record.dispatches[dispatch.id] = dispatch
            live_room, created = _copy(record.room), _copy(dispatch)
        self._dispatched(live_room, [created])
        return _copy(created)

    def delete_dispatch(self, room: str, dispatch_id: str) -> AgentDispatch | None:
        with self._lock:
            record = self._rooms.get(room)
            return record.dispatches.pop(dispatch_id, None) if record else None

    def add_job(self, room: Room, job: Job) -> bool:
        """Records a worker's job on its dispatch; False when room or dispatch went meanwhile."""
        with self._lock:
            record = self._rooms.get(room.name)
            live = record is not None and record.room.sid == room.sid
            dispatch = record.dispatches.get(job.dispatch_id) if record and live else None
            if dispatch is not None:
                dispatch.state.jobs.append(_copy(job))
            return dispatch is not None

    def clear(self) -> None:
        with self._lock:
            self._rooms.clear()
            self._deadlines.clear()

    def close_idle_rooms(self, now: float) -> list[str]:
        """Closes rooms past their empty or departure timeout; returns their names."""
        closed: list[RoomRecord] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                _, name, sid = heapq.heappop(self._deadlines)
                record = self._rooms.get(name)
                if record is None or record.room.sid != sid:
                    continue  # deleted, or replaced by a newer room of the same name
                deadline = record.close_deadline()
                if deadline is not None and deadline <= now:
                    closed.append(self._rooms.pop(name))
                elif deadline is not None:
                    heapq.heappush(self._deadlines, (deadline, name, sid))
        for record in closed:
            self._tell(_finished(record))
        return [record.room.name for record in closed]

    def _open_room(self, request: CreateRoomRequest, now: float) -> RoomRecord:
        # Called with the lock held.
        record = RoomRecord(room=new_room(request, now), request=_copy(request))
        record.dispatches = {d.id: d for d in room_dispatches(request, int(now * 1e9))}
        self._rooms[request.name] = record
        self._schedule(record)
        return record

    def _tell(self, events: list[Event]) -> None:
        listener = self.listener
        if listener is not None:
            for name, room, participant in events:
                listener(name, room, participant)

    def _dispatched(self, room: Room, dispatches: list[AgentDispatch]) -> None:
        listener = self.dispatch_listener
        if listener is not None:
            for dispatch in dispatches:
                listener(room, dispatch)

    def _schedule(self, record: RoomRecord) -> None:
        # A heap of deadlines keeps the once-a-second check cheap with many thousands of rooms.
        deadline = record.close_deadline()
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, record.room.name, record.room.sid))


def new_room(request: CreateRoomRequest, now: float) -> Room:
    return Room(
        sid=new_guid(ROOM_PREFIX),
        name=request.name,
        empty_timeout=request.empty_timeout or DEFAULT_EMPTY_TIMEOUT_S,
        departure_timeout=request.departure_timeout or DEFAULT_DEPARTURE_TIMEOUT_S,
        max_participants=request.max_participants or DEFAULT_MAX_PARTICIPANTS,
        creation_time=int(now),
        creation_time_ms=int(now * 1000),
        turn_password=secrets.token_urlsafe(32),
        enabled_codecs=[Codec(mime=mime) for mime in ENABLED_CODECS],
        metadata=request.metadata,
    )


def _finished(record: RoomRecord) -> list[Event]:
    """What ending a room tells: everyone still in it left, then the room finished."""
    left: list[Event] = [("participant_left", record.room, p) for p in record.participants.values()]
    return [*left, ("room_finished", record.room, None)]


def _joining(participant: ParticipantInfo, now: float) -> ParticipantInfo:
    joined = _copy(participant)
    joined.sid = joined.sid or new_guid(PARTICIPANT_PREFIX)
    joined.joined_at_ms = joined.joined_at_ms or int(now * 1000)
    joined.joined_at = joined.joined_at or joined.joined_at_ms // 1000
    return joined


def _add(record: RoomRecord, joined: ParticipantInfo) -> list[Event]:
    # Called with the lock held.
    record.participants[joined.identity] = joined
    record.ever_joined = True
    _count_participants(record)
    if joined.state != ParticipantInfo.ACTIVE:  # the server tells of active ones only
        return []
    return [("participant_joined", _copy(record.room), _copy(joined))]


def _count_participants(record: RoomRecord) -> None:
    # As the server counts them (rtc/room.go updateProto): agents and egress are not counted.
    independent = [p for p in record.participants.values() if p.kind not in DEPENDENT_KINDS]
    record.room.num_participants = len(independent)
    record.room.num_publishers = sum(p.is_publisher for p in record.participants.values())


def _copies(messages: Iterable[M]) -> list[M]:
    return [_copy(message) for message in messages]


def _copy(message: M) -> M:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
