"""`POST /api/voice/token`: LiveKit's standard token endpoint, for `TokenSource.endpoint(url)`.

The wire format is LiveKit's `TokenSourceRequest` / `TokenSourceResponse` in snake_case (what the
JS SDK sends and what Swift can decode), answered with 201 as LiveKit's docs ask.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import ids as entropy
from ...access.caller import Caller, CallerKind, caller_of, fill_own_identity, require_may_act_for
from ...errors import FieldError, Forbidden
from ...sessions.room_config import parse_room_config
from ...sessions.token_plan import TokenAsk
from ..models import TokenIssued, TokenRequest
from ..request_input import read_json_object, validate_as
from ..responses import NO_STORE, model_response
from ..state import app_state


async def issue_token(request: Request) -> Response:
    caller = caller_of(request)
    data = await read_json_object(request)
    fill_own_identity(caller, data, "participant_identity")
    context = {
        "max_client_metadata_bytes": app_state(request)["settings"].max_client_metadata_bytes
    }
    body = validate_as(TokenRequest, data, context)
    # A service (or dev's anonymous caller) that names nobody gets a fresh identity.
    identity = body.participant_identity or str(entropy.uuid4())
    require_may_act_for(caller, identity, "participant_identity")
    ask = TokenAsk(
        identity=identity,
        room_config=parse_room_config(body.room_config),
        room_name=room_name_for(caller, body.room_name),
        name=body.participant_name or "",
        metadata=body.participant_metadata or "",
        attributes=body.participant_attributes or {},
    )
    issued = await app_state(request)["sessions"].issue_token(ask)
    response = TokenIssued(
        server_url=issued.livekit_url,
        participant_token=issued.token,
        room_name=issued.room_name,
        participant_name=issued.participant_name,
    )
    return model_response(response, 201, NO_STORE)


def room_name_for(caller: Caller, asked: str | None) -> str | None:
    # Joining a named room would need LiveKit to tell whose session it is; this path makes no
    # call to LiveKit, so only callers trusted with every session may name one.
    if asked is not None and caller.kind is CallerKind.END_USER:
        problem = FieldError("room_name", "may not be chosen by an end user")
        raise Forbidden("An end user may not choose the room", field_errors=[problem])
    return asked


routes = [Route("/api/voice/token", issue_token, methods=["POST"])]
