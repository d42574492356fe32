"""LiveKit webhooks: verified with the SDK's `WebhookReceiver`, then logged and counted.

`WebhookReceiver.receive` is synchronous (a JWT check and a SHA-256 of the body), so it runs in
the worker threads under the service's shared limiter. LiveKit sends the JWT bare in
`Authorization`, which the receiver expects; a `Bearer ` prefix is tolerated for other senders.
"""

from __future__ import annotations

from functools import partial

import anyio
import jwt
from google.protobuf.json_format import ParseError
from pydantic import SecretStr

from ..errors import MalformedRequest, WebhookRejected
from ..ops.metrics import Metrics
from . import api

STALE_ERRORS = (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError)


class WebhookInbox:
    def __init__(
        self, api_key: str, api_secret: SecretStr, limiter: anyio.CapacityLimiter, metrics: Metrics
    ) -> None:
        verifier = api.TokenVerifier(api_key, api_secret.get_secret_value())
        self._receiver = api.WebhookReceiver(verifier)
        self._limiter = limiter
        self._metrics = metrics

    async def receive(self, body: bytes, authorization: str | None) -> api.WebhookEvent:
        """The event, once its signature holds; WebhookRejected or MalformedRequest otherwise."""
        try:
            event = await self._verified(body, authorization)
        except WebhookRejected as exc:
            self._metrics.webhooks_rejected.labels(exc.reason).inc()
            raise
        except MalformedRequest:
            self._metrics.webhooks_rejected.labels("malformed").inc()
            raise
        return event

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
