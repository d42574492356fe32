"""Domain errors and how each maps to HTTP (status, stable code, title).

The service layer raises these; the HTTP layer turns them into RFC 9457 problem+json bodies. They
carry no Starlette types so the service layer stays free of the web framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One invalid request field, named the way the client spelt it."""

    field: str
    message: str


class GatewayError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        field_errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = tuple(field_errors)
        self.headers = dict(headers or {})


class MalformedRequest(GatewayError):
    status, code, title = 400, "invalid_request", "Malformed request"


class InvalidRequest(GatewayError):
    status, code, title = 422, "invalid_request", "Invalid request"


class Unauthenticated(GatewayError):
    status, code, title = 401, "unauthenticated", "Authentication required"


class WebhookRejected(Unauthenticated):
    """A webhook whose signature does not hold: `reason` is unsigned, invalid or stale."""

    title = "Webhook signature rejected"

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="livekit-webhook"'})
        self.reason = reason


class Forbidden(GatewayError):
    status, code, title = 403, "forbidden", "Forbidden"


class IdempotencyConflict(GatewayError):
    status, code, title = (
        422,
        "idempotency_key_reused",
        "Idempotency-Key reused with another request",
    )


class SessionEnded(GatewayError):
    """A replayed Idempotency-Key whose session was ended with DELETE: ending it is final."""

    status, code, title = 409, "session_ended", "Session ended"


class SessionNotFound(GatewayError):
    status, code, title = 404, "session_not_found", "Session not found"


class PayloadTooLarge(GatewayError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class TooManyRequests(GatewayError):
    status, code, title = 429, "rate_limited", "Too many requests"


class LiveKitError(GatewayError):
    status, code, title = 502, "livekit_error", "LiveKit answered with an error"


class LiveKitUnavailable(GatewayError):
    status, code, title = 503, "livekit_unavailable", "LiveKit is unavailable"


class LiveKitTimeout(GatewayError):
    status, code, title = 504, "livekit_timeout", "LiveKit did not answer in time"


class IdentityProviderUnavailable(GatewayError):
    status, code, title = 503, "identity_provider_unavailable", "Identity provider unavailable"


@dataclass(frozen=True)
class HttpProblem:
    """A problem the HTTP layer itself detects (no route, wrong method), in the same shape."""

    status: int
    code: str
    title: str
    headers: dict[str, str] = field(default_factory=dict)


HTTP_PROBLEMS = {
    404: HttpProblem(404, "not_found", "Not found"),
    405: HttpProblem(405, "method_not_allowed", "Method not allowed"),
    413: HttpProblem(413, "payload_too_large", "Request body too large"),
}


def problem_type(code: str) -> str:
    """A stable URI per error code (RFC 9457 `type`)."""
    return f"urn:voice-gateway:problem:{code}"
