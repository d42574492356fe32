"""What a receiver's answer to one delivery means for that event (docs/events.md, "Delivery").

- 2xx: taken.
- 410 Gone: the receiver says this URL will never take events again (Standard Webhooks asks a
  sender to disable the endpoint). The event is dead-lettered at once, not retried for a day: kept
  and counted, for an operator to re-send once the app says where its events go now. The URL is
  not disabled: it is configuration, shared by replicas that keep no state, so each later event
  gets one try of its own (and is delivered should the URL take events again).
- Any other failure with `Retry-After` (429 and 503 mostly, as the spec suggests honouring it):
  retried no sooner than it asks, bounded by the longest backoff, so a receiver asking for an hour
  does not stall its session's lane for an hour.
- Anything else (every other 4xx, 5xx, 3xx) is retried on the normal schedule: a receiver being
  deployed or misconfigured answers 404, 401 or 400 for a while, and an app whose mistake is fixed
  later would rather have its events late than never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..livekit.twirp_pool import TwirpAnswer

GONE = 410


@dataclass(frozen=True)
class Refusal:
    """Why a receiver did not take an event, and what that asks of the sender."""

    error: str
    final: bool = False  # never retry this one: dead-letter it now
    retry_after_s: float | None = None  # the receiver's own "not before"


def refusal_of(answer: TwirpAnswer) -> Refusal | None:
    """None when the receiver took the event."""
    status = answer.status
    if 200 <= status < 300:
        return None
    error = f"HTTP {status}"
    if status == GONE:
        return Refusal(error, final=True)
    return Refusal(error, retry_after_s=retry_after_s(answer.retry_after))


def retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent or not
    either (a receiver's bad header then means the normal schedule, not a stall)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:  # RFC 9110 dates are GMT; parsedate says so only for "-0000"-less ones
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - datetime.now(UTC)).total_seconds())
