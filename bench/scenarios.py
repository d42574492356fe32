"""The load shapes, and how a run (full or smoke) sizes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Backend = Literal["stand-in", "livekit-server"]  # what answers the gateway's LiveKit calls

FULL_DURATION_S = 10
FULL_WARMUP_S = 2
# CI's smoke proves the wiring, not the speed: one short run per target, no warm-up.
SMOKE_DURATION_S = 1
WRK_THREADS = 1  # a wrk thread outpaces a Python server many times; leave the cores to the servers


@dataclass(frozen=True)
class Scenario:
    name: str
    latency_ms: int  # the stand-in answers every LiveKit call after this long
    connections: int
    smoke_connections: int
    goal_per_s: float | None = None  # printed beside the result, never enforced
    # The real server: the gateway in front of it, then in front of the stand-in (0 ms) at the
    # same connections for comparison, instead of the ceiling.
    backend: Backend = "stand-in"


SCENARIOS = (
    Scenario("fast", latency_ms=0, connections=64, smoke_connections=8),
    Scenario("slow-livekit", latency_ms=200, connections=200, smoke_connections=32, goal_per_s=800),
    # 32: sessions/s is flat from 8 to 64 on 2 cores, more only queue longer (bench/README.md).
    Scenario(
        "real-livekit", latency_ms=0, connections=32, smoke_connections=8, backend="livekit-server"
    ),
)


@dataclass(frozen=True)
class Plan:
    smoke: bool
    duration_s: int
    warmup_s: int
    threads: int
    connections: int | None  # overrides every scenario's own count

    def goal_for(self, scenario: Scenario) -> float | None:
        """The goal applies to the scenario as designed: not to a smoke, nor other connections."""
        if self.smoke or self.connections_for(scenario) != scenario.connections:
            return None
        return scenario.goal_per_s

    def connections_for(self, scenario: Scenario) -> int:
        if self.connections is not None:
            return self.connections
        return scenario.smoke_connections if self.smoke else scenario.connections


def make_plan(
    *, smoke: bool, duration_s: int | None, connections: int | None, threads: int | None
) -> Plan:
    default_duration = SMOKE_DURATION_S if smoke else FULL_DURATION_S
    return Plan(
        smoke=smoke,
        duration_s=duration_s or default_duration,
        warmup_s=0 if smoke else FULL_WARMUP_S,
        threads=threads or WRK_THREADS,
        connections=connections,
    )
