"""Prometheus metrics. One registry per app, so several apps (tests, replicas in one process)
never share or collide on counters."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LIVEKIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Lag below a millisecond is timer noise; a blocked loop shows up in the upper buckets.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# From queued to delivered: milliseconds when the receiver is up, up to a day of retries.
EVENT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class HistogramSeries:
    """A labelled histogram's children, each made once and then found by its label values:
    prometheus_client's `labels()` takes a lock and builds its key on every call (1.6 µs), and
    the hot paths observe on every request. Only for label values from small, fixed sets
    (methods, route templates, statuses, outcomes): one child is kept per combination."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._children: dict[tuple[str, ...], Histogram] = {}

    def __call__(self, *values: str) -> Histogram:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._histogram.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions_created = Counter(
            "voice_gateway_sessions_created_total",
            "Sessions created (room created and token signed)",
            registry=self.registry,
        )
        self.sessions_ended = Counter(
            "voice_gateway_sessions_ended_total",
            "Sessions ended by the gateway, by reason (deleted by a caller, expired)",
            ["reason"],
            registry=self.registry,
        )
        self.livekit_calls = Histogram(
            "voice_gateway_livekit_call_seconds",
            "Calls to LiveKit's RoomService by method and outcome",
            ["method", "outcome"],
            buckets=LIVEKIT_BUCKETS,
            registry=self.registry,
        )
        self.livekit_call_series = HistogramSeries(self.livekit_calls)
        self._add_operations_metrics()
        self._add_session_lifecycle_metrics()
        self._add_session_event_metrics()

    # --- operations: HTTP requests, the thread limiter, the event loop ---

    def _add_operations_metrics(self) -> None:
        self.http_requests = Histogram(
            "voice_gateway_http_request_duration_seconds",
            "HTTP requests by method, route template and status, with their latency",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.http_request_series = HistogramSeries(self.http_requests)
        self.http_in_flight = Gauge(
            "voice_gateway_http_requests_in_flight",
            "HTTP requests being served now",
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "voice_gateway_event_loop_lag_seconds",
            "How late the event loop woke a sleeping task: time something blocked it",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        self._add_thread_limiter_gauges()
        self._add_edge_metrics()

    def _add_edge_metrics(self) -> None:
        # Counted by the server's protocol (ops/edge_protocol.py), below the app: these
        # connections never became a request the access log or the HTTP histogram could see.
        self.connections_open = Gauge(
            "voice_gateway_connections_open",
            "Client connections open now",
            registry=self.registry,
        )
        self.connections_shed = Counter(
            "voice_gateway_connections_shed_total",
            "Client connections the server closed itself, by reason (header_timeout, "
            "body_timeout, headers_too_large, invalid_http, connection_limit)",
            ["reason"],
            registry=self.registry,
        )
        self.requests_shed = Counter(
            "voice_gateway_requests_shed_total",
            "Requests answered 503 overloaded at once, before their body was read, because the "
            "gateway served VOICE_GATEWAY_MAX_REQUESTS_IN_FLIGHT requests already",
            registry=self.registry,
        )

    def _add_thread_limiter_gauges(self) -> None:
        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(
                f"voice_gateway_thread_limiter_{name}", documentation, registry=self.registry
            )

        self._limiter_capacity = gauge("capacity", "Worker threads the SDK's sync calls may use")
        self._limiter_borrowed = gauge("borrowed", "Worker threads in use now")
        self._limiter_waiting = gauge("waiting", "Tasks waiting for a worker thread")

    def watch_thread_limiter(self, limiter: anyio.CapacityLimiter) -> None:
        """Read the limiter at scrape time, so the numbers are current, not sampled."""
        self._limiter_capacity.set_function(lambda: limiter.total_tokens)
        self._limiter_borrowed.set_function(lambda: limiter.borrowed_tokens)
        self._limiter_waiting.set_function(lambda: limiter.statistics().tasks_waiting)

    # --- sessions' lifecycle: the token endpoint, idempotent creation, webhooks, the reaper ---
    # (sessions the reaper ends count above: voice_gateway_sessions_ended_total{reason="expired"})

    def _add_session_lifecycle_metrics(self) -> None:
        self.tokens_issued = Counter(
            "voice_gateway_tokens_issued_total",
            "Join tokens issued by the token endpoint (no room is created for them)",
            registry=self.registry,
        )
        self.sessions_refused = Counter(
            "voice_gateway_sessions_refused_total",
            "Sessions refused because a session cap was full, by cap (gateway, agent, user)",
            ["cap"],
            registry=self.registry,
        )
        self.idempotent_replays = Counter(
            "voice_gateway_idempotent_replays_total",
            "Session creations answered with the session an Idempotency-Key already made",
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "voice_gateway_webhook_events_total",
            "Verified LiveKit webhook events, by event type",
            ["event"],
            registry=self.registry,
        )
        self.webhooks_rejected = Counter(
            "voice_gateway_webhooks_rejected_total",
            "Webhook requests refused, by reason (unsigned, invalid, stale, malformed)",
            ["reason"],
            registry=self.registry,
        )
        self.revived_rooms_deleted = Counter(
            "voice_gateway_revived_rooms_deleted_total",
            "Rooms a join re-created after their session had ended, deleted again, by how they "
            "were found (webhook, sweep)",
            ["found_by"],
            registry=self.registry,
        )
        self.reaper_sweeps = Counter(
            "voice_gateway_reaper_sweeps_total",
            "Passes of the expiry reaper over LiveKit's rooms, by outcome (ok, failed)",
            ["outcome"],
            registry=self.registry,
        )

    # --- session events to the app (sessions/event_delivery.py) ---

    def _add_session_event_metrics(self) -> None:
        self.events = Counter(
            "voice_gateway_events_total",
            "Session event deliveries (one per event and receiver URL), by event type and "
            "outcome (delivered, retried: an attempt that failed, dead, dropped)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.event_delivery_latency = Histogram(
            "voice_gateway_event_delivery_seconds",
            "Time from an event queued to its delivery acknowledged by the receiver",
            buckets=EVENT_BUCKETS,
            registry=self.registry,
        )
        self._event_queue_depth = Gauge(
            "voice_gateway_event_queue_depth",
            "Event deliveries queued and not yet delivered or dead",
            registry=self.registry,
        )
        self._event_oldest_age = Gauge(
            "voice_gateway_event_queue_oldest_age_seconds",
            "How long the oldest pending event delivery has waited (0 when none is pending)",
            registry=self.registry,
        )
        self._event_partitions = Gauge(
            "voice_gateway_event_partitions_owned",
            "Partitions of the Redis event queue this replica delivers now (of 16; 0 in memory)",
            registry=self.registry,
        )

    def watch_event_queue(
        self, depth: Callable[[], int], oldest_queued_at: Callable[[], float | None]
    ) -> None:
        def oldest_age() -> float:
            queued_at = oldest_queued_at()
            return max(0.0, time.time() - queued_at) if queued_at is not None else 0.0

        self._event_queue_depth.set_function(depth)
        self._event_oldest_age.set_function(oldest_age)

    def watch_event_partitions(self, owned: Callable[[], int]) -> None:
        self._event_partitions.set_function(owned)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
