"""Prometheus metrics. One registry per app, so several apps (tests, replicas in one process)
never share or collide on counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LIVEKIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
