"""The gateway's domain errors. Everything below `web/` raises these and nothing else; `web/`
renders each as problem+json (`web/problems.py` holds the status and title of each), so no layer
under it knows HTTP. Each error has a stable machine word, its `code`.

    GatewayError
    ├── RequestError                   the request itself is wrong
    │   ├── MalformedRequest           invalid_request: the body is not a JSON object
    │   ├── InvalidRequest             invalid_request: a field (named in field_errors) is wrong
    │   │   └── IdempotencyConflict    idempotency_key_reused
    │   ├── PayloadTooLarge            payload_too_large
    │   └── UnsupportedMediaType       unsupported_media_type: a body that says it is not JSON
    ├── Unauthenticated                unauthenticated: no or bad credentials
    │   └── WebhookRejected            unauthenticated: a webhook's signature does not hold
    ├── Forbidden                      forbidden: the caller may not act for that user or room
    ├── SessionNotFound                session_not_found
    ├── SessionEnded                   session_ended: an Idempotency-Key of a deleted session
    ├── TooManyRequests                rate_limited
    │   └── ConcurrencyLimited         concurrency_limit: a session cap is full (live sessions)
    └── UpstreamError                  a service the gateway depends on failed
        ├── LiveKitError               livekit_error: LiveKit answered with an error
        ├── LiveKitUnavailable         livekit_unavailable: LiveKit could not be reached
        │   └── LiveKitBusy            livekit_unavailable: LiveKit answered 429/503 (Retry-After)
        ├── LiveKitTimeout             livekit_timeout: LiveKit missed the deadline
        ├── IdentityProviderUnavailable  identity_provider_unavailable: its JWKS is unreachable
        ├── AdmissionStoreUnavailable  admission_store_unavailable: Redis cannot say the counts
        └── EventsUnavailable          events_unavailable: Redis did not take a session event
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid request field, named the way the client spelt it."""

    field: str
    message: str


class GatewayError(Exception):
    code: str = "internal_error"

    def __init__(self, detail: str, *, field_errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = tuple(field_errors)


class RequestError(GatewayError):
    code = "invalid_request"


class MalformedRequest(RequestError):
    pass


class InvalidRequest(RequestError):
    pass


class IdempotencyConflict(InvalidRequest):
    code = "idempotency_key_reused"


class PayloadTooLarge(RequestError):
    code = "payload_too_large"


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"


class Unauthenticated(GatewayError):
    """`challenge` is what the caller should present (an RFC 6750 Bearer challenge)."""

    code = "unauthenticated"

    def __init__(self, detail: str, challenge: str = 'Bearer realm="voice-gateway"') -> None:
        super().__init__(detail)
        self.challenge = challenge


class WebhookRejected(Unauthenticated):
    """A webhook whose signature does not hold: `reason` is unsigned, invalid or stale."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail, challenge='Bearer realm="livekit-webhook"')
        self.reason = reason


class Forbidden(GatewayError):
    code = "forbidden"


class SessionNotFound(GatewayError):
    code = "session_not_found"


class SessionEnded(GatewayError):
    """The session has ended: a replayed Idempotency-Key whose session was ended with DELETE
    (ending it is final), or a session that ended while its create waited for the agent."""

    code = "session_ended"


class TooManyRequests(GatewayError):
    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ConcurrencyLimited(TooManyRequests):
    """A session over one of the session caps; `cap` is "gateway", "agent" or "user"."""

    code = "concurrency_limit"

    def __init__(self, cap: str, limit: int, count: int, retry_after_s: int) -> None:
        super().__init__(
            f"The {cap} session cap is full: {count} live sessions of at most {limit}; "
            f"retry in {retry_after_s} s, or end a session",
            retry_after_s=retry_after_s,
        )
        self.cap = cap
        self.limit = limit
        self.count = count


class UpstreamError(GatewayError):
    pass


class LiveKitError(UpstreamError):
    code = "livekit_error"


class LiveKitUnavailable(UpstreamError):
    code = "livekit_unavailable"


class LiveKitBusy(LiveKitUnavailable):
    """LiveKit answered 429 or 503: it sheds load; the client may retry after a moment."""

    retry_after_s = 1


class LiveKitTimeout(UpstreamError):
    code = "livekit_timeout"


class IdentityProviderUnavailable(UpstreamError):
    code = "identity_provider_unavailable"


class AgentTimeout(GatewayError):
    """The agent did not join within VOICE_GATEWAY_AGENT_WAIT_S; the session was ended."""

    code = "agent_timeout"


class AgentUnavailable(GatewayError):
    """The agent's job failed; the session was ended."""

    code = "agent_unavailable"


class AdmissionStoreUnavailable(UpstreamError):
    """The session counts are in Redis and Redis does not answer (creating sessions goes on)."""

    code = "admission_store_unavailable"


class EventsUnavailable(UpstreamError):
    """Session events live in Redis and Redis did not take one: the action that caused it is
    answered 503 (a LiveKit webhook: LiveKit retries it), so no event is lost unsaid."""

    code = "events_unavailable"
    retry_after_s = 1
