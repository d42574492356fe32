"""Sends queued session events to the app: one background task per replica (the app's lifespan),
never in a request's path.

At least once: a delivery is acknowledged only after a 2xx. A non-2xx, a timeout or a refused
connection is retried after an exponential backoff with jitter, for
`VOICE_GATEWAY_EVENTS_RETRY_FOR_S` since the event was queued; then it is dead-lettered (kept,
counted, logged once). What each answer means (410 dead-letters at once, `Retry-After` is
honoured, every other 4xx is retried) is receiver_answers.py's.

Each (receiver, session) pair is a lane of its own, delivered in `sequence` order, one at a time:
a session whose receiver keeps failing waits in its lane and holds back no other session.

Signed per Standard Webhooks with its reference library: `webhook-id` is the event's id (the same
on every retry, so the receiver can deduplicate), `webhook-timestamp` is the attempt's time (a
receiver refuses signatures older than 5 minutes, so each attempt is signed anew). HMAC-SHA256 of
a small body costs microseconds: it runs on the loop.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from datetime import UTC, datetime

import anyio
from standardwebhooks.webhooks import Webhook

from ..livekit.twirp_pool import NotHttp, Unreachable
from ..ops.metrics import Metrics
from .event_queue import Delivery, EventQueue
from .receiver_answers import Refusal, refusal_of
from .receivers import NotAReceiverUrl, Receivers, receiver_of

logger = logging.getLogger("voice_gateway.events")  # pinned: logs know it by this name

FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 600.0  # at worst every 10 minutes, however long the receiver is down
SENDS_AT_ONCE = 64  # requests in flight to receivers, over all lanes


class DeliveryMoved(Exception):
    """The delivery's partition is another replica's now (event_leases.py): that one sends it."""


def retry_delay_s(attempt: int, longest_s: float = LONGEST_RETRY_S) -> float:
    """Exponential from FIRST_RETRY_S, capped; full jitter over its upper half, so replicas and
    sessions failing together do not retry together."""
    ceiling = min(longest_s, FIRST_RETRY_S * 2.0**attempt)
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - spreads retries, not a secret


def delay_for(refusal: Refusal, attempt: int, longest_s: float) -> float:
    """The backoff, or the receiver's `Retry-After` when later, never past `longest_s`."""
    backoff = retry_delay_s(attempt, longest_s)
    if refusal.retry_after_s is None:
        return backoff
    return max(backoff, min(refusal.retry_after_s, longest_s))


class Lane:
    """One receiver's deliveries of one session, lowest sequence first."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, float, str, Delivery]] = []

    def push(self, delivery: Delivery) -> None:
        event = delivery.event
        heapq.heappush(self._heap, (event.sequence, delivery.queued_at, event.id, delivery))

    def pop(self) -> Delivery | None:
        return heapq.heappop(self._heap)[3] if self._heap else None


class EventDelivery:
    def __init__(
        self,
        queue: EventQueue,
        receivers: Receivers,
        signer: Webhook,
        metrics: Metrics,
        timeout_s: float,
        retry_for_s: float,
        retry_max_s: float = LONGEST_RETRY_S,
    ) -> None:
        self._queue = queue
        self._receivers = receivers
        self._timeout_s = timeout_s
        self._signer = signer
        self._metrics = metrics
        self._retry_for_s = retry_for_s
        self._retry_max_s = retry_max_s
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._sending = anyio.CapacityLimiter(SENDS_AT_ONCE)

    async def run(self) -> None:
        """Until the lifespan cancels it: every claimed delivery into its lane."""
        async with anyio.create_task_group() as lanes:
            while True:
                for delivery in await self._queue.claim():
                    key = (delivery.url, delivery.event.session_id)
                    lane = self._lanes.get(key)
                    if lane is None:
                        lane = self._lanes[key] = Lane()
                        lanes.start_soon(self._run_lane, key, lane)
                    lane.push(delivery)

    async def _run_lane(self, key: tuple[str, str], lane: Lane) -> None:
        while (delivery := lane.pop()) is not None:
            try:
                await self._deliver(delivery)
            except DeliveryMoved:
                logger.debug("event %s is another replica's to deliver now", delivery.event.id)
            except Exception:  # a bug in one delivery must not stop the lane or the others
                logger.exception("delivering event %s failed", delivery.event.id)
        del self._lanes[key]  # no await since the lane was found empty: nothing was pushed

    async def _deliver(self, delivery: Delivery) -> None:
        event_type, attempt = delivery.event.type, 0
        while (refusal := await self._attempt(delivery)) is not None:
            if refusal.final:
                await self._dead(delivery, refusal.error, "at once", attempt + 1)
                return
            delay_s = delay_for(refusal, attempt, self._retry_max_s)
            if time.time() + delay_s - delivery.queued_at > self._retry_for_s:
                after = f"after {self._retry_for_s:g} s of retries"
                await self._dead(delivery, refusal.error, after, attempt + 1)
                return
            self._metrics.events.labels(event_type, "retried").inc()
            await anyio.sleep(delay_s)
            attempt += 1
        await self._queue.ack(delivery)
        self._metrics.events.labels(event_type, "delivered").inc()
        self._metrics.event_delivery_latency.observe(time.time() - delivery.queued_at)

    async def _attempt(self, delivery: Delivery) -> Refusal | None:
        """None when the receiver took the event; else why not."""
        body = delivery.event.body()
        async with self._sending:
            if not self._queue.still_ours(delivery):  # checked last thing before the send
                raise DeliveryMoved
            headers = self._headers(delivery, body)
            try:
                # The whole attempt, connecting included: the partition leases' fence counts on
                # it (event_leases.py).
                with anyio.fail_after(self._timeout_s):
                    answer = await self._receivers.post(delivery.url, headers, body.encode())
            except Unreachable as exc:  # refused, reset, closed before answering
                return Refusal(exc.why)
            except NotAReceiverUrl as exc:  # would never be delivered: dead-lettered at once
                return Refusal(str(exc), final=True)
            except NotHttp:
                return Refusal("what answers does not speak HTTP")
            except TimeoutError:
                return Refusal(f"no answer within {self._timeout_s:g} s")
        return refusal_of(answer)

    def _headers(self, delivery: Delivery, body: str) -> dict[str, str]:
        now = datetime.now(UTC)
        event_id = delivery.event.id
        return {  # the Content-Type is the receivers' pool's own
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(event_id, now, body),
        }

    async def _dead(self, delivery: Delivery, error: str, when: str, attempts: int) -> None:
        await self._queue.dead_letter(delivery, error, attempts)
        self._metrics.events.labels(delivery.event.type, "dead").inc()
        logger.error(
            "event %s (%s of session %s) dead-lettered %s to %s: %s",
            delivery.event.id,
            delivery.event.type,
            delivery.event.session_id,
            when,
            receiver_of(delivery.url),
            error,
        )
