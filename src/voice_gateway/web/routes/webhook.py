"""`POST /api/voice/webhook`: LiveKit's signed event notifications.

No caller authentication here: LiveKit signs each body instead, and the service verifies it. A
body whose signature does not verify counts against its client address like a refused credential,
and an address over its limit gets 429 before its body is verified: a flood of bogus webhooks must
not queue verifications in the threads that sign tokens. Valid webhooks are never counted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...access.control import client_address
from ...errors import WebhookRejected
from ..models import WebhookAccepted
from ..responses import model_response
from ..state import app_state


async def receive_webhook(request: Request) -> Response:
    access, address = app_state(request)["access"], client_address(request.scope)
    await access.before_webhook(address)
    try:
        received = await app_state(request)["sessions"].receive_webhook(
            await request.body(), request.headers.get("authorization")
        )
    except WebhookRejected:
        await access.webhook_refused(address)  # 429 once the address is over its limit
        raise
    # Any 2xx ends LiveKit's retries; the body is only for people reading logs.
    return model_response(WebhookAccepted(event=received.event, session_id=received.session_id))


routes = [Route("/api/voice/webhook", receive_webhook, methods=["POST"])]
