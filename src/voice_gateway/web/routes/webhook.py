"""`POST /api/voice/webhook`: LiveKit's signed event notifications.

No caller authentication here: LiveKit signs each body instead, and the webhook inbox verifies
it. A body whose signature does not verify counts against its client address like a refused
credential, and an address over its limit gets 429 before its body is verified: a flood of bogus
webhooks must not queue verifications in the threads that sign tokens. Valid webhooks are never
counted.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ...errors import WebhookRejected
from ..endpoint import Endpoint
from ..middleware.access import client_address
from ..models import WebhookAccepted, WebhookEvent
from ..openapi import Operation
from ..responses import model_response
from ..state import GatewayRequest


async def receive_webhook(request: GatewayRequest) -> Response:
    access, address = request.state["access"], client_address(request.scope)
    await access.before_webhook(address)
    try:
        received = await request.state["webhooks"].receive(
            await request.body(), request.headers.get("authorization")
        )
    except (WebhookRejected, ClientDisconnect):
        # A hang-up mid-body counts too: otherwise it would be the one unlimited way in.
        await access.webhook_refused(address)  # 429 once the address is over its limit
        raise
    # Any 2xx ends LiveKit's retries; the body is only for people reading logs.
    return model_response(WebhookAccepted(event=received.event, session_id=received.session_id))


ENDPOINTS = (
    Endpoint(
        receive_webhook,
        Operation(
            "post",
            "/api/voice/webhook",
            "LiveKit webhooks, signature-verified",
            200,
            WebhookAccepted,
            WebhookEvent,
            (400, 401, 413, 429, 503),
            request_media_type="application/webhook+json",
            public=True,  # LiveKit's signature is its credential
            description="`Authorization` carries LiveKit's signature: a JWT (bare, as LiveKit "
            "sends it) whose `sha256` claim is the body's hash. Unsigned, tampered or expired "
            "bodies get 401 and are not processed; each counts against the client address's "
            "limit, and an address over it gets 429 before its webhook is verified. 503 "
            "`events_unavailable` when session events are kept in Redis and Redis did not take "
            "this webhook's event: LiveKit retries it.",
        ),
    ),
)
