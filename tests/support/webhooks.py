"""LiveKit webhooks as the server sends them: a protojson body, signed with the API key pair."""

from __future__ import annotations

import time
from typing import Any

from livekit import api

from tests.support.keys import API_KEY, API_SECRET
from voice_gateway.standin import sign_webhook, webhook_body

WEBHOOK = "/api/voice/webhook"


def event_body(event: str = "room_started", room: str = "r1", metadata: str = "") -> bytes:
    message = api.WebhookEvent(event=event, id="EV_test", created_at=int(time.time()))
    message.room.name, message.room.metadata = room, metadata
    return webhook_body(message)


def signed(body: bytes, **overrides: Any) -> dict[str, str]:
    key = overrides.pop("api_key", API_KEY)
    secret = overrides.pop("api_secret", API_SECRET)
    token = sign_webhook(body, key, secret, **overrides)
    return {"Authorization": token, "Content-Type": "application/webhook+json"}
