"""One Twirp request (RoomService, AgentDispatchService), as the generated twirp server handles it:
method, path, Content-Type, body, then the handler. Every failure is raised as a TwirpError."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from . import dispatch_service, room_service
from .auth import Grants
from .codec import Encoding, MalformedBody, decode, encode, encoding_for
from .store import RoomStore
from .twirp import TwirpMethod, bad_route, malformed

PATH_PREFIX = "/twirp"
SERVICES = {
    room_service.SERVICE: room_service.METHODS,
    dispatch_service.SERVICE: dispatch_service.METHODS,
}


async def serve_twirp(
    store: RoomStore, request: Request, path: str, grants: Grants | None
) -> Response:
    method = _method_for(request.method, path)
    content_type = request.headers.get("content-type", "")
    encoding = encoding_for(content_type)
    if encoding is None:
        problem = f"unexpected Content-Type: {_go_quote(content_type)}"
        raise bad_route(problem, request.method, path)
    body = await request.body()
    try:
        decoded = decode(body, encoding, method.request_type)
    except MalformedBody:
        kind = "json" if encoding is Encoding.JSON else "protobuf"
        raise malformed(f"the {kind} request could not be decoded") from None
    reply = method.handler(store, grants, decoded)
    return Response(encode(reply, encoding), media_type=encoding.content_type)


def _method_for(http_method: str, path: str) -> TwirpMethod:
    if http_method != "POST":
        problem = f"unsupported method {_go_quote(http_method)} (only POST is allowed)"
        raise bad_route(problem, http_method, path)
    # twirp's parseTwirpPath: <prefix>/<package.Service>/<Method>
    rest, _, name = path.rpartition("/")
    prefix, _, service = rest.rpartition("/")
    method = SERVICES.get(service, {}).get(name)
    if prefix != PATH_PREFIX or method is None:
        raise bad_route(f"no handler for path {_go_quote(path)}", http_method, path)
    return method


def _go_quote(text: str) -> str:
    """Close to Go's %q for the header values and paths that reach it."""
    return json.dumps(text, ensure_ascii=False)
