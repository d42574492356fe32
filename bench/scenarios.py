"""The load shapes, and how a run (full or smoke) sizes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Backend = Literal["stand-in", "livekit-server"]  # what answers the gateway's LiveKit calls
# What a run loads: the gateway (in front of the scenario's LiveKit), the same gateway code from
# another source tree (`--alt-src`, for A/B runs), the naive baseline (bench/baseline.py) in front
# of the same stand-in, the bare ceiling (bench/ceiling.py), or the gateway in front of the
# stand-in at 0 ms (the real server's scenario compares with it).
TargetKind = Literal[
    "gateway",
    "gateway-events",
    "gateway-alt",
    "gateway-events-alt",
    "baseline",
    "ceiling",
    "gateway-standin",
]

# With `--alt-src`: each of these targets is run from the other tree too.
ALT_TARGETS: tuple[tuple[TargetKind, TargetKind], ...] = (
    ("gateway", "gateway-alt"),
    ("gateway-events", "gateway-events-alt"),
)

FULL_DURATION_S = 10
FULL_WARMUP_S = 2
# CI's smoke proves the wiring, not the speed: one short run per target, no warm-up.
SMOKE_DURATION_S = 1
# Each round measures every target of a scenario once, in the same order (A B C A B C A B C), so
# the machine's drift touches all alike; the median over rounds is the figure.
FULL_ROUNDS = 3
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
    targets: tuple[TargetKind, ...] = ("gateway", "baseline", "ceiling")
    # Sample `GET /healthz` on a connection of its own while the load runs, and read the
    # gateway's own event-loop lag monitor (its histogram in /metrics) over the run.
    probes: bool = False


SCENARIOS = (
    # 32: sessions/s is flat from 8 to 64 on 2 cores, more only queue longer (bench/README.md).
    Scenario(
        "fast",
        latency_ms=0,
        connections=32,
        smoke_connections=8,
        targets=("gateway", "gateway-events", "baseline", "ceiling"),
    ),
    Scenario(
        "slow-livekit",
        latency_ms=200,
        connections=200,
        smoke_connections=32,
        goal_per_s=950,
        targets=("gateway", "baseline"),
        probes=True,
    ),
    # Far more connections than the gateway's capacity needs: the excess must be shed at once
    # (503 `overloaded`), not queued; judged against the gateway's sessions/s in `fast`.
    Scenario(
        "overload",
        latency_ms=0,
        connections=1000,
        smoke_connections=64,
        targets=("gateway",),
        probes=True,
    ),
    Scenario(
        "real-livekit",
        latency_ms=0,
        connections=32,
        smoke_connections=8,
        backend="livekit-server",
        targets=("gateway", "gateway-standin"),
    ),
)
OVERLOAD_CAPACITY_SHARE = 0.9  # of `fast`'s sessions/s, the overload goal


@dataclass(frozen=True)
class Plan:
    smoke: bool
    duration_s: int
    warmup_s: int
    threads: int
    connections: int | None  # overrides every scenario's own count
    rounds: int = FULL_ROUNDS
    only_targets: tuple[str, ...] | None = None  # `--targets`: of each scenario's, only these
    alt_src: str | None = None  # `--alt-src`: also run the gateway from this source tree
    gateway_env: Mapping[str, str] = field(default_factory=dict)  # `--gateway-env`

    def targets_of(self, scenario: Scenario) -> tuple[TargetKind, ...]:
        kinds: tuple[TargetKind, ...] = scenario.targets
        for kind, alt in ALT_TARGETS if self.alt_src else ():
            if kind in kinds:  # right after its twin: interleaved
                at = kinds.index(kind) + 1
                kinds = (*kinds[:at], alt, *kinds[at:])
        if self.only_targets is not None:
            kinds = tuple(k for k in kinds if k in self.only_targets)
        return kinds

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
    *,
    smoke: bool,
    duration_s: int | None,
    connections: int | None,
    threads: int | None,
    rounds: int | None = None,
    only_targets: tuple[str, ...] | None = None,
    alt_src: str | None = None,
    gateway_env: Mapping[str, str] | None = None,
) -> Plan:
    default_duration = SMOKE_DURATION_S if smoke else FULL_DURATION_S
    return Plan(
        smoke=smoke,
        duration_s=duration_s or default_duration,
        warmup_s=0 if smoke else FULL_WARMUP_S,
        threads=threads or WRK_THREADS,
        connections=connections,
        rounds=rounds or (1 if smoke else FULL_ROUNDS),
        only_targets=only_targets,
        alt_src=alt_src,
        gateway_env=dict(gateway_env or {}),
    )
