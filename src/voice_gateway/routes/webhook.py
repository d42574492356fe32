"""`POST /api/voice/webhook`: LiveKit's signed event notifications.

No caller authentication here: LiveKit signs each body instead, and the service verifies it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..models import WebhookAccepted
from ..responses import model_response
from ..state import sessions_of


async def receive_webhook(request: Request) -> Response:
    received = await sessions_of(request).receive_webhook(
        await request.body(), request.headers.get("authorization")
    )
    # Any 2xx ends LiveKit's retries; the body is only for people reading logs.
    return model_response(WebhookAccepted(event=received.event, session_id=received.session_id))


routes = [Route("/api/voice/webhook", receive_webhook, methods=["POST"])]
