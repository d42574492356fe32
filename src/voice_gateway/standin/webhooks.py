"""Webhooks as the server sends them (protocol webhook/url_notifier.go, server telemetry/events.go).

Each event is POSTed to every configured URL with:
- the body: `protojson.Marshal(WebhookEvent)`, i.e. lowerCamelCase keys, defaults omitted, int64
  values as strings, `id` = `EV_…` and `createdAt` = Unix seconds;
- `Authorization: <jwt>`, bare (no `Bearer `), valid for 5 minutes, whose `sha256` claim is the
  standard base64 of SHA-256 over the exact body bytes;
- `Content-Type: application/webhook+json` and `User-Agent: LiveKit`.

Events are raised from any thread (the store's callers) and delivered in order from the server's
loop. Unlike the server (go-retryablehttp, 4 retries), a delivery is tried once; every attempt is
recorded for tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from google.protobuf import json_format
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from .guid import new_guid

CONTENT_TYPE = "application/webhook+json"
VALID_FOR_S = 300  # SetValidFor(5 * time.Minute)
DELIVERY_TIMEOUT_S = 5.0
KEPT_DELIVERIES = 1_000
EVENT_PREFIX = "EV_"


def new_event(
    name: str, room: Room, participant: ParticipantInfo | None = None, now: float | None = None
) -> WebhookEvent:
    event = WebhookEvent(event=name, id=new_guid(EVENT_PREFIX))
    event.created_at = int(time.time() if now is None else now)
    event.room.CopyFrom(room)
    if participant is not None:
        event.participant.CopyFrom(participant)
    return event


def webhook_body(event: WebhookEvent) -> bytes:
    """protojson's default form: lowerCamelCase, defaults omitted, int64 as strings."""
    data = json_format.MessageToDict(event)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def sign_webhook(
    body: bytes,
    api_key: str,
    api_secret: str,
    *,
    now: float | None = None,
    valid_for_s: float = VALID_FOR_S,
) -> str:
    """The bare JWT the server puts in `Authorization`: iss, nbf, iat, exp and sha256."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": api_key,
        "nbf": issued,
        "iat": issued,
        "exp": issued + int(valid_for_s),
        "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
    }
    return _hs256(claims, api_secret)


def _hs256(claims: dict[str, object], secret: str) -> str:
    # Signed here rather than by PyJWT, which warns on every short secret such as "secret".
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of one event to one URL; `status` is None when it got no answer (`error` says)."""

    url: str
    event: str
    body: bytes
    authorization: str
    status: int | None
    error: str | None = None


class WebhookSender:
    def __init__(self, api_key: str, api_secret: str, urls: Iterable[str] = ()) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._urls: tuple[str, ...] = tuple(urls)
        self._pending: queue.SimpleQueue[tuple[WebhookEvent, tuple[str, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=KEPT_DELIVERIES)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    def set_urls(self, urls: Iterable[str]) -> None:
        self._urls = tuple(urls)

    def notify(self, name: str, room: Room, participant: ParticipantInfo | None = None) -> None:
        """Queues an event for every URL configured now; from any thread, never blocking."""
        urls = self._urls
        if not urls:  # the common case (benchmarks, most tests) builds nothing
            return
        self._pending.put((new_event(name, room, participant), urls))
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    async def deliver_forever(self) -> None:
        """Delivers queued events, in order, until cancelled; run on the server's loop."""
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S) as client:
                while True:
                    await self._deliver_pending(client)
                    await self._wakeup.wait()
                    self._wakeup.clear()
        finally:
            self._loop = self._wakeup = None

    def deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def clear(self) -> None:
        """Forgets recorded deliveries and drops events not yet sent."""
        with self._lock:
            self._deliveries.clear()
        while not self._pending.empty():
            self._pending.get_nowait()

    async def _deliver_pending(self, client: httpx.AsyncClient) -> None:
        while not self._pending.empty():
            event, urls = self._pending.get_nowait()
            body = webhook_body(event)
            for url in urls:
                await self._deliver(client, url, event.event, body)

    async def _deliver(self, client: httpx.AsyncClient, url: str, name: str, body: bytes) -> None:
        token = sign_webhook(body, self._api_key, self._api_secret)
        headers = {"Authorization": token, "Content-Type": CONTENT_TYPE, "User-Agent": "LiveKit"}
        try:
            response = await client.post(url, content=body, headers=headers)
            delivery = WebhookDelivery(url, name, body, token, response.status_code)
        except httpx.HTTPError as exc:
            delivery = WebhookDelivery(url, name, body, token, None, type(exc).__name__)
        with self._lock:
            self._deliveries.append(delivery)
