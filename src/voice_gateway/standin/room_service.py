"""The RoomService methods: grant checks, limits and store calls, in the server's order.

Each handler takes the store, the caller's grants (None without a token) and the decoded
request, and returns the response message or raises a TwirpError.
"""

from __future__ import annotations

from collections.abc import Mapping

from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
    UpdateRoomMetadataRequest,
)

from .auth import Grants
from .store import RoomStore
from .twirp import (
    TwirpError,
    TwirpMethod,
    domain_error,
    found,
    invalid_argument,
    permissions_denied,
)

SERVICE = "livekit.RoomService"
MAX_ROOM_NAME_BYTES = 256
MAX_METADATA_BYTES = 524_288  # v1.13.x; 64000 up to v1.12.0


def create_room(store: RoomStore, grants: Grants | None, request: CreateRoomRequest) -> Room:
    require(grants, "roomCreate")
    if len(request.name.encode()) > MAX_ROOM_NAME_BYTES:
        raise domain_error(
            "invalid_argument",
            f"room name length exceeds limits: max length {MAX_ROOM_NAME_BYTES}",
        )
    check_metadata(request.metadata)
    return store.create_room(request)


def list_rooms(
    store: RoomStore, grants: Grants | None, request: ListRoomsRequest
) -> ListRoomsResponse:
    require(grants, "roomList")
    return ListRoomsResponse(rooms=store.list_rooms(request.names))


def delete_room(
    store: RoomStore, grants: Grants | None, request: DeleteRoomRequest
) -> DeleteRoomResponse:
    require(grants, "roomCreate")
    if not store.delete_room(request.room):
        raise room_not_found()
    return DeleteRoomResponse()


def update_room_metadata(
    store: RoomStore, grants: Grants | None, request: UpdateRoomMetadataRequest
) -> Room:
    check_metadata(request.metadata)  # limits before the grant, as the server does
    require_admin(grants, request.room)
    room = store.update_metadata(request.room, request.metadata)
    if room is None:
        raise room_not_found()
    return room


def list_participants(
    store: RoomStore, grants: Grants | None, request: ListParticipantsRequest
) -> ListParticipantsResponse:
    require_admin(grants, request.room)
    # A missing room is an empty list, not an error (LocalStore.ListParticipants).
    return ListParticipantsResponse(participants=store.list_participants(request.room))


def get_participant(
    store: RoomStore, grants: Grants | None, request: RoomParticipantIdentity
) -> ParticipantInfo:
    require_admin(grants, request.room)
    return found(store.get_participant(request.room, request.identity), participant_not_found)


def remove_participant(
    store: RoomStore, grants: Grants | None, request: RoomParticipantIdentity
) -> RemoveParticipantResponse:
    require_admin(grants, request.room)
    if not store.remove_participant(request.room, request.identity):
        raise participant_not_found()
    return RemoveParticipantResponse()


def require(grants: Grants | None, grant: str) -> None:
    if grants is None or not grants.allows(grant):
        raise permissions_denied()


def require_admin(grants: Grants | None, room: str) -> None:
    # An exact match: an empty grant room only matches an empty request room.
    if grants is None or not grants.allows("roomAdmin") or grants.room != room:
        raise permissions_denied()


def check_metadata(metadata: str) -> None:
    if len(metadata.encode()) > MAX_METADATA_BYTES:
        raise invalid_argument("metadata size exceeds limits", str(MAX_METADATA_BYTES))


def room_not_found() -> TwirpError:
    return domain_error("not_found", "requested room does not exist")


def participant_not_found() -> TwirpError:
    return domain_error("not_found", "participant does not exist")


METHODS: Mapping[str, TwirpMethod] = {
    "CreateRoom": TwirpMethod(CreateRoomRequest, create_room),
    "ListRooms": TwirpMethod(ListRoomsRequest, list_rooms),
    "DeleteRoom": TwirpMethod(DeleteRoomRequest, delete_room),
    "UpdateRoomMetadata": TwirpMethod(UpdateRoomMetadataRequest, update_room_metadata),
    "ListParticipants": TwirpMethod(ListParticipantsRequest, list_participants),
    "GetParticipant": TwirpMethod(RoomParticipantIdentity, get_participant),
    "RemoveParticipant": TwirpMethod(RoomParticipantIdentity, remove_participant),
}
