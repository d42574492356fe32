"""The stand-in's ASGI app: the server's middleware order (double-slash fix, API-key auth)
in front of its mux (Twirp RoomService and AgentDispatchService, `/` health, 404 for the rest)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from .auth import AuthFailure, Grants, token_from, verify
from .calls import TwirpCall
from .reaper import close_idle_rooms_forever
from .state import StandInState
from .twirp import NoResponse, TwirpError
from .twirp_endpoint import serve_twirp

TWIRP_PREFIX = "/twirp/"


def create_standin_app(state: StandInState) -> StandInApp:
    return StandInApp(state)


class StandInApp:
    def __init__(self, state: StandInState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._respond(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _respond(self, request: Request) -> Response:
        path: str = request.scope["path"]
        if path.startswith("//"):  # RemoveDoubleSlashes
            path = path[1:]
        if path.startswith(TWIRP_PREFIX):
            return await self._twirp(request, path)
        try:
            self._grants_of(request)  # the middleware runs before routing, on every path
        except AuthFailure as failure:
            return unauthorized(failure)
        return health() if path == "/" else page_not_found()

    async def _twirp(self, request: Request, path: str) -> Response:
        call = self.state.calls.begin(path)
        response = await self._twirp_response(request, path, call)
        call.status = response.status_code
        return response

    async def _twirp_response(self, request: Request, path: str, call: TwirpCall) -> Response:
        # Injected faults stand for the network and the server as a whole, so they come first.
        injected = await self.state.faults.before_call()
        response = await self._twirp_answer(request, path, call, injected)
        await self.state.faults.after_call()
        return response

    async def _twirp_answer(
        self, request: Request, path: str, call: TwirpCall, injected: TwirpError | None
    ) -> Response:
        try:
            if injected is not None:
                raise injected
            call.grants = self._grants_of(request)
            return await serve_twirp(self.state.store, request, path, call.grants)
        except AuthFailure as failure:
            return unauthorized(failure)
        except TwirpError as error:
            call.code = error.code
            if isinstance(error, NoResponse):
                await asyncio.sleep(self.state.no_response_after_s)
            return twirp_error(error)

    def _grants_of(self, request: Request) -> Grants | None:
        authorization = request.headers.get("authorization")
        # r.FormValue takes the first value; only consulted without the header.
        query_tokens = [] if authorization else request.query_params.getlist("access_token")
        token = token_from(authorization, query_tokens[0] if query_tokens else None)
        return None if token is None else verify(token, self.state.api_keys)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tasks.append(asyncio.create_task(self.state.webhooks.deliver_forever()))
                if self.state.close_empty_rooms:
                    tasks.append(asyncio.create_task(close_idle_rooms_forever(self.state.store)))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return


def twirp_error(error: TwirpError) -> Response:
    return Response(error.body(), status_code=error.status, media_type="application/json")


def unauthorized(failure: AuthFailure) -> Response:
    # The server's HandleError writes the bare text; Go sniffs it as text/plain.
    return PlainTextResponse(failure.text, status_code=401)


def health() -> Response:
    return PlainTextResponse("OK")


def page_not_found() -> Response:
    # Go's http.NotFound, byte for byte.
    return PlainTextResponse(
        "404 page not found\n", status_code=404, headers={"X-Content-Type-Options": "nosniff"}
    )
