"""LiveKit webhooks: verified with the SDK's `WebhookReceiver`, then logged and counted.

`WebhookReceiver.receive` is synchronous (a JWT check and a SHA-256 of the body), so it runs in
the worker threads under the service's shared limiter. LiveKit sends the JWT bare in
`Authorization`, which the receiver expects; a `Bearer ` prefix is tolerated for other senders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import anyio
import jwt
from google.protobuf.json_format import ParseError
from livekit import api
from pydantic import SecretStr

from ..errors import MalformedRequest, WebhookRejected
from ..ops.metrics import Metrics
from ..sessions.record import record_of

logger = logging.getLogger("voice_gateway.webhooks")  # pinned: logs know it by this name

# LiveKit's event names (protocol webhook docs); anything else is counted as "other", so a
# label's values stay few whatever a future server sends.
KNOWN_EVENTS = frozenset(
    {
        "room_started",
        "room_finished",
        "participant_joined",
        "participant_left",
        "participant_connection_aborted",
        "track_published",
        "track_unpublished",
        "egress_started",
        "egress_updated",
        "egress_ended",
        "ingress_started",
        "ingress_ended",
        "agent_job_started",
        "agent_job_ended",
    }
)
STALE_ERRORS = (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError)


@dataclass(frozen=True)
class ReceivedEvent:
    event: str
    session_id: str | None


class WebhookInbox:
    def __init__(
        self,
        api_key: str,
        api_secret: SecretStr,
        limiter: anyio.CapacityLimiter,
        prefix: str,
        metrics: Metrics,
    ) -> None:
        verifier = api.TokenVerifier(api_key, api_secret.get_secret_value())
        self._receiver = api.WebhookReceiver(verifier)
        self._limiter = limiter
        self._prefix = prefix
        self._metrics = metrics

    async def receive(self, body: bytes, authorization: str | None) -> ReceivedEvent:
        try:
            event = await self._verified(body, authorization)
        except WebhookRejected as exc:
            self._metrics.webhooks_rejected.labels(exc.reason).inc()
            raise
        except MalformedRequest:
            self._metrics.webhooks_rejected.labels("malformed").inc()
            raise
        return self._record(event)

    async def _verified(self, body: bytes, authorization: str | None) -> api.WebhookEvent:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token:
            raise WebhookRejected("The webhook carries no signature in Authorization", "unsigned")
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise MalformedRequest("The webhook body is not UTF-8") from exc
        receive = partial(self._receiver.receive, text, token)
        try:
            return await anyio.to_thread.run_sync(receive, limiter=self._limiter)
        except STALE_ERRORS as exc:
            raise WebhookRejected("The webhook's signature has expired", "stale") from exc
        except ParseError as exc:
            raise MalformedRequest("The signed webhook body is not a LiveKit event") from exc
        except Exception as exc:  # the SDK raises a bare Exception for a hash mismatch
            raise WebhookRejected("The webhook's signature does not verify", "invalid") from exc

    def _record(self, event: api.WebhookEvent) -> ReceivedEvent:
        room = event.room
        record = record_of(room.name, room.metadata, self._prefix) if room.name else None
        session_id = record.session_id if record else None
        label = event.event if event.event in KNOWN_EVENTS else "other"
        self._metrics.webhook_events.labels(label).inc()
        logger.info(
            "LiveKit webhook %s: session %s, room %s, participant %s",
            event.event,
            session_id or "-",
            room.name or "-",
            event.participant.identity or "-",
        )
        return ReceivedEvent(event.event, session_id)
