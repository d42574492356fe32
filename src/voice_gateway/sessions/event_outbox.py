"""The outbox: where the sessions' code hands over an event (events.py), one delivery per
receiver URL, and the lifespan's part of sending them (event_delivery.py).

Handing over never waits on a receiver: the in-memory queue takes an event at once or, when full,
drops it (counted, logged). So a slow or dead receiver never slows session creation or a webhook.
With no `VOICE_GATEWAY_EVENTS_URL` the outbox is off and takes nothing.

In memory an event lives as long as the process: on shutdown the queue is drained within what is
left of `VOICE_GATEWAY_SHUTDOWN_GRACE_S`, and what is still pending then is counted as dropped and
logged. That mode is for one replica and development; durability is Redis's (the next slice).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from standardwebhooks.webhooks import Webhook

from ..ops.drain import Drain
from ..ops.metrics import Metrics
from ..settings import Settings
from .event_delivery import EventDelivery
from .event_queue import Delivery, EventQueue, EventQueueFull, MemoryEventQueue
from .events import SessionEvent

logger = logging.getLogger("voice_gateway.events")  # pinned: logs know it by this name


class EventOutbox:
    def __init__(self, queue: EventQueue | None, urls: list[str], metrics: Metrics) -> None:
        self._queue = queue
        self._urls = urls
        self._metrics = metrics

    @classmethod
    def off(cls, metrics: Metrics) -> EventOutbox:
        return cls(None, [], metrics)

    async def emit(self, event: SessionEvent) -> None:
        if self._queue is None:
            return
        try:
            await self._queue.append([Delivery(event, url) for url in self._urls])
        except EventQueueFull as full:
            self._metrics.events.labels(event.type, "dropped").inc(len(self._urls))
            logger.warning(
                "event %s (%s of session %s) dropped: the queue is full (%s)",
                event.id,
                event.type,
                event.session_id,
                full,
            )


@asynccontextmanager
async def open_event_outbox(
    settings: Settings, metrics: Metrics, drain: Drain
) -> AsyncIterator[EventOutbox]:
    """The outbox, and while the app serves, the task that delivers what it holds."""
    if not settings.events_configured or settings.events_secret is None:
        yield EventOutbox.off(metrics)
        return
    queue = MemoryEventQueue()
    metrics.watch_event_queue(queue.depth, queue.oldest_queued_at)
    signer = Webhook(settings.events_secret.get_secret_value())
    # httpx (with the rich and pygments its CLI pulls in) only once this is configured: a fifth
    # of the start-up of a gateway without it (bench/README.md, measured decisions).
    import httpx

    timeout = httpx.Timeout(settings.events_timeout_s)
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        anyio.create_task_group() as sending,
    ):
        delivery = EventDelivery(
            queue,
            client,
            signer,
            metrics,
            settings.events_retry_for_s,
            settings.events_retry_max_s,
        )
        sending.start_soon(delivery.run)
        yield EventOutbox(queue, settings.events_url, metrics)
        with anyio.move_on_after(drain.seconds_left(settings.shutdown_grace_s)):
            await queue.wait_until_empty()
        sending.cancel_scope.cancel()
    _count_dropped(queue.abandon(), metrics)


def _count_dropped(lost: list[Delivery], metrics: Metrics) -> None:
    for delivery in lost:
        metrics.events.labels(delivery.event.type, "dropped").inc()
    if lost:
        logger.warning(
            "%d event deliveries dropped at shutdown: not delivered within the grace period "
            "(kept in memory only; see VOICE_GATEWAY_SHUTDOWN_GRACE_S)",
            len(lost),
        )
