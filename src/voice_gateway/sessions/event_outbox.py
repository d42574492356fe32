"""The outbox: where the sessions' code hands over an event (events.py), one delivery per
receiver URL, and the lifespan's part of sending them (event_delivery.py).

Handing over never waits on a receiver: the in-memory queue takes an event at once or, when full,
drops it (counted, logged). So a slow or dead receiver never slows session creation or a webhook.
With no `VOICE_GATEWAY_EVENTS_URL` the outbox is off and takes nothing.

In memory an event lives as long as the process: on shutdown the queue is drained within what is
left of `VOICE_GATEWAY_SHUTDOWN_GRACE_S`, and what is still pending then is counted as dropped and
logged. That mode is for one replica and development.

With `VOICE_GATEWAY_REDIS_URL` an event is in Redis before the action that caused it is answered:
`emit` raises `EventsUnavailable` (503) when Redis does not take it, so the caller fails (a
create) or LiveKit retries (a webhook) rather than an event being lost unsaid. An event of an
action that cannot be undone or retried (a session ended: its end mark is made, a retry would find
it ended and emit nothing) goes through `emit_settled`: should Redis not take it, it waits in this
replica's memory and is appended once Redis is back (lost only if this replica dies before).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from standardwebhooks.webhooks import Webhook

from ..errors import EventsUnavailable
from ..ops.drain import Drain
from ..ops.metrics import Metrics
from ..settings import Settings
from .event_delivery import SENDS_AT_ONCE, EventDelivery
from .event_queue import (
    MEMORY_QUEUE_SIZE,
    STORE_RETRY_S,
    Delivery,
    EventQueue,
    EventQueueFull,
    EventQueueUnavailable,
    MemoryEventQueue,
)
from .events import SessionEvent
from .receivers import Receivers

logger = logging.getLogger("voice_gateway.events")  # pinned: logs know it by this name


class EventOutbox:
    def __init__(self, queue: EventQueue | None, urls: list[str], metrics: Metrics) -> None:
        self._queue = queue
        self._urls = urls
        self._metrics = metrics
        self._spooled: list[Delivery] = []  # what Redis did not take, of settled actions
        self._spool_changed = anyio.Event()
        # An event emitted twice within the queue's memory of them is one delivery (its `seen`).
        self.deduplicates = queue is not None and queue.deduplicates
        self.on = queue is not None  # off: an event need not even be built

    @classmethod
    def off(cls, metrics: Metrics) -> EventOutbox:
        return cls(None, [], metrics)

    async def emit(self, event: SessionEvent) -> None:
        """Queued (or, in memory and full, dropped); raises EventsUnavailable when Redis did not
        take it."""
        if self._queue is None:
            return
        try:
            await self._queue.append(self._deliveries(event))
        except EventQueueFull as full:
            self._dropped(event, f"the queue is full ({full})")
        except EventQueueUnavailable as down:
            logger.warning("event %s (%s) not queued: Redis did not take it (%s)",
                           event.id, event.type, down)  # fmt: skip
            raise EventsUnavailable("Session events are unavailable (Redis); retry") from down

    async def emit_settled(self, event: SessionEvent) -> None:
        """Never raises: what Redis does not take waits here until it does (`resend_spooled`)."""
        try:
            await self.emit(event)
        except EventsUnavailable:
            if len(self._spooled) >= MEMORY_QUEUE_SIZE:
                self._dropped(event, "Redis did not take it and the spool is full")
                return
            self._spooled += self._deliveries(event)
            self._spool_changed.set()
            logger.warning("event %s (%s of session %s) kept in memory until Redis takes it",
                           event.id, event.type, event.session_id)  # fmt: skip

    async def resend_spooled(self) -> None:
        """Until cancelled: the spool appended again, every `STORE_RETRY_S` while Redis fails."""
        assert self._queue is not None  # only run for an outbox that is on
        while True:
            await self._spool_changed.wait()
            await anyio.sleep(STORE_RETRY_S)
            spooled, self._spooled = self._spooled, []
            try:
                await self._queue.append(spooled)
            except EventQueueUnavailable:
                self._spooled = spooled + self._spooled
                continue
            logger.info("%d event deliveries kept in memory are in Redis now", len(spooled))
            if not self._spooled:
                self._spool_changed = anyio.Event()

    def abandon_spooled(self) -> list[Delivery]:
        spooled, self._spooled = self._spooled, []
        return spooled

    def _deliveries(self, event: SessionEvent) -> list[Delivery]:
        return [Delivery(event, url) for url in self._urls]

    def _dropped(self, event: SessionEvent, why: str) -> None:
        self._metrics.events.labels(event.type, "dropped").inc(len(self._urls))
        logger.warning(
            "event %s (%s of session %s) dropped: %s", event.id, event.type, event.session_id, why
        )


@asynccontextmanager
async def open_event_outbox(
    settings: Settings, metrics: Metrics, drain: Drain
) -> AsyncIterator[EventOutbox]:
    """The outbox, and while the app serves, the task that delivers what it holds."""
    if not settings.events_configured or settings.events_secret is None:
        yield EventOutbox.off(metrics)
        return
    signer = Webhook(settings.events_secret.get_secret_value())
    receivers = Receivers(SENDS_AT_ONCE)
    async with (
        _open_queue(settings, metrics) as queue,
        _closing(receivers),
        anyio.create_task_group() as sending,
    ):
        metrics.watch_event_queue(queue.depth, queue.oldest_queued_at)
        delivery = EventDelivery(
            queue,
            receivers,
            signer,
            metrics,
            settings.events_timeout_s,
            settings.events_retry_for_s,
            settings.events_retry_max_s,
        )
        outbox = EventOutbox(queue, settings.events_url, metrics)
        sending.start_soon(delivery.run)
        sending.start_soon(outbox.resend_spooled)
        yield outbox
        with drain.within_grace(settings.shutdown_grace_s):
            await queue.wait_until_empty()
        sending.cancel_scope.cancel()
    _count_dropped(queue.abandon() + outbox.abandon_spooled(), metrics)


@asynccontextmanager
async def _closing(receivers: Receivers) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await receivers.aclose()


@asynccontextmanager
async def _open_queue(settings: Settings, metrics: Metrics) -> AsyncIterator[EventQueue]:
    """A Redis Stream shared by the replicas when `VOICE_GATEWAY_REDIS_URL` is set; else memory."""
    if settings.redis_url is None:
        yield MemoryEventQueue()
        return
    # Imported only with Redis configured: coredis (numpy through it) slows start-up.
    from .event_queue_redis import open_redis_event_queue

    async with open_redis_event_queue(
        settings.redis_url.get_secret_value(),
        settings.room_prefix,
        lease_s=settings.events_lease_s,
        safety_s=settings.events_safety_s,
    ) as queue:
        metrics.watch_event_partitions(lambda: len(queue.leases.owned))
        yield queue


def _count_dropped(lost: list[Delivery], metrics: Metrics) -> None:
    for delivery in lost:
        metrics.events.labels(delivery.event.type, "dropped").inc()
    if lost:
        logger.warning(
            "%d event deliveries dropped at shutdown: not delivered within the grace period "
            "(kept in memory only: see VOICE_GATEWAY_SHUTDOWN_GRACE_S, or Redis was down)",
            len(lost),
        )
