"""The drain: from SIGTERM until the process stops, the gateway keeps serving but says it is
leaving, so load balancers move traffic elsewhere before its listener closes."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Drain:
    """Shared by the server (which starts it on a signal) and the app (which reports it)."""

    def __init__(self) -> None:
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        self._started = True


class DrainMiddleware:
    """While draining, every answer closes its connection: keep-alive clients reconnect through
    their load balancer, which by then routes to a replica that is staying."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.started:
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing)
