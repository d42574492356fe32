"""Every request gets an id: the client's `X-Request-ID` when it is sane, a fresh one otherwise."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# Echoed ids end up in logs and headers: keep them short and free of anything a log could misread.
SAFE_ID_PATTERN = r"^[A-Za-z0-9._:/+=-]{1,128}$"
_SAFE_ID = re.compile(SAFE_ID_PATTERN)

# The id of the request being served, for every log line written on its behalf. It is never
# reset: uvicorn serves each request in a task of its own, and the id must outlive this
# middleware for the lines written after it (the 500 handler, uvicorn's own error line).
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _accepted_id(Headers(scope=scope).get(HEADER))
        # A copy: some servers (asgi-lifespan) hand every request the same lifespan-state dict.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _accepted_id(offered: str | None) -> str:
    if offered and _SAFE_ID.match(offered):
        return offered
    return new_request_id()


def new_request_id() -> str:
    """128 random bits as 32 hex digits, like a uuid4, but from `random`, not `os.urandom`.

    A correlation id needs uniqueness, not secrecy. `uuid4()` makes a syscall that releases the
    GIL, and getting it back from the token-signing threads cost ~15% of the loop under load.
    """
    return f"{_ids.getrandbits(128):032x}"


_ids = random.Random()  # seeded from the OS once, at import  # noqa: S311


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "")) or new_request_id()
