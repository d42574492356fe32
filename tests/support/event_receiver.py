"""The app's side of session events: a receiver that verifies every request with the
`standardwebhooks` library, as an app would, and keeps what it was sent. A plain ASGI app, served
by a real uvicorn on loopback (`serving` in tests/support/gateway.py).

Every event it is sent is also checked against its type's published JSON Schema; an autouse
fixture (tests/conftest.py) fails a test whose receivers were sent an event that does not match."""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from tests.support.event_schemas import schema_errors

EVENTS_SECRET = "whsec_" + base64.b64encode(b"a test key of at least 24 bytes!").decode()


@dataclass(frozen=True)
class Received:
    webhook_id: str
    payload: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.payload["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.payload["data"]
        return data


@dataclass
class EventReceiver:
    secret: str = EVENTS_SECRET
    status: int = 204  # what it answers a verified event with
    hold: anyio.Event | None = None  # when set: every request waits for it before answering
    failing_session: str | None = None  # this session's events are answered 503
    script: list[int] = field(default_factory=list)  # the next answers, before `status` again
    retry_after: str | None = None  # sent with every answer that is not a 2xx
    flaky: float = 0.0  # this share of requests, chosen at random, is answered 503
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    received: list[Received] = field(default_factory=list)  # taken (2xx), in arrival order
    attempted_ids: list[str] = field(default_factory=list)  # every verified request's id
    attempted_at: list[float] = field(default_factory=list)  # and when it came (monotonic)
    unverified: int = 0
    off_schema: list[str] = field(default_factory=list)  # what the schemas found wrong

    def __post_init__(self) -> None:
        RECEIVERS.append(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await _body(receive)
        if self.hold is not None:
            await self.hold.wait()
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            self.unverified += 1
            await _answer(send, 401)
            return
        self.attempted_ids.append(headers["webhook-id"])
        self.attempted_at.append(time.monotonic())
        self.off_schema.extend(schema_errors(payload))
        status = self._status_for(payload)
        if 200 <= status < 300:
            self.received.append(Received(headers["webhook-id"], payload))
            await _answer(send, status)
        else:
            await _answer(send, status, self.retry_after)

    def _status_for(self, payload: dict[str, Any]) -> int:
        if payload["data"]["session_id"] == self.failing_session:
            return 503
        if self.flaky and self.rng.random() < self.flaky:
            return 503
        return self.script.pop(0) if self.script else self.status

    def of_session(self, session_id: str) -> list[Received]:
        return [event for event in self.received if event.data["session_id"] == session_id]

    def types_of(self, session_id: str) -> list[str]:
        return [event.type for event in self.of_session(session_id)]

    def first_of_session(self, session_id: str) -> list[Received]:
        """Each event once, as first taken: duplicates (at least once) left out."""
        first: dict[str, Received] = {}
        for event in self.of_session(session_id):
            first.setdefault(event.webhook_id, event)
        return list(first.values())


RECEIVERS: list[EventReceiver] = []  # those made by the running test (tests/conftest.py)


async def _lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, retry_after: str | None = None) -> None:
    headers = [(b"retry-after", retry_after.encode())] if retry_after else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
