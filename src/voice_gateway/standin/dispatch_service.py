"""The AgentDispatchService methods (server pkg/service/agent_dispatch_service.go, roommanager.go).

Every method wants roomAdmin for the request's room. The room's node answers, over psrpc: when no
node holds the room, psrpc gives up after its 3 s timeout and the caller gets 503 `unavailable`
"no response from servers", never a 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from livekit.protocol.agent_dispatch import (
    AgentDispatch,
    CreateAgentDispatchRequest,
    DeleteAgentDispatchRequest,
    ListAgentDispatchRequest,
    ListAgentDispatchResponse,
)
from livekit.protocol.models import DisconnectReason

from .auth import Grants
from .room_service import check_metadata, require_admin
from .store import RoomStore
from .twirp import NoResponse, TwirpMethod, domain_error, found

SERVICE = "livekit.AgentDispatchService"
DISPATCH_NOT_FOUND = partial(domain_error, "not_found", "dispatch ID not found")


def list_dispatch(
    store: RoomStore, grants: Grants | None, request: ListAgentDispatchRequest
) -> ListAgentDispatchResponse:
    require_admin(grants, request.room)
    dispatches = found(store.list_dispatches(request.room, request.dispatch_id), NoResponse)
    return ListAgentDispatchResponse(agent_dispatches=dispatches)


def create_dispatch(
    store: RoomStore, grants: Grants | None, request: CreateAgentDispatchRequest
) -> AgentDispatch:
    require_admin(grants, request.room)
    check_metadata(request.metadata)
    # With room.auto_create (the default) the server creates a missing room first.
    return store.create_dispatch(request.room, request.agent_name, request.metadata)


def delete_dispatch(
    store: RoomStore, grants: Grants | None, request: DeleteAgentDispatchRequest
) -> AgentDispatch:
    require_admin(grants, request.room)
    if store.get_room(request.room) is None:
        raise NoResponse()
    dispatch = found(store.delete_dispatch(request.room, request.dispatch_id), DISPATCH_NOT_FOUND)
    # Its jobs are terminated and their agents removed from the room.
    for job in dispatch.state.jobs:
        identity = job.state.participant_identity
        store.remove_participant(request.room, identity, DisconnectReason.PARTICIPANT_REMOVED)
    return dispatch


METHODS: Mapping[str, TwirpMethod] = {
    "ListDispatch": TwirpMethod(ListAgentDispatchRequest, list_dispatch),
    "CreateDispatch": TwirpMethod(CreateAgentDispatchRequest, create_dispatch),
    "DeleteDispatch": TwirpMethod(DeleteAgentDispatchRequest, delete_dispatch),
}
