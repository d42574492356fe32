"""The results: one row per (scenario, target, round); printed as a table of medians over rounds
(with the range), optionally written as JSON with every round."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scenarios import OVERLOAD_CAPACITY_SHARE
from .spread import median_and_range
from .wrk import WrkResult

CPU_ROLES = ("server", "livekit", "wrk")
# (numerator, denominator) of the CPU-per-session ratios the notes give, when both ran.
RATIOS = (
    ("baseline", "gateway"),
    ("baseline", "gateway-events"),
    ("gateway-events", "gateway"),
    ("gateway-alt", "gateway"),
    ("gateway-events-alt", "gateway-events"),
)
HEADER = (
    "scenario", "target", "livekit", "conns", "sessions/s", "CPU us/session", "p50 ms", "p99 ms",
    "non-2xx", "500/503/504", "errors", "healthz p99", "lag p99", "start s",
    "CPU% server/livekit/wrk",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    scenario: str
    target: str  # "gateway", "gateway-alt", "baseline", "ceiling"
    livekit: str  # behind the gateway: "stand-in 0 ms", "livekit-server"; "-" for the ceiling
    livekit_latency_ms: int | None  # the stand-in's per call; None without a stand-in
    connections: int
    result: WrkResult
    cpu_percent: Mapping[str, float | None]  # by role, over the measured run
    goal_per_s: float | None = None
    cpu_us_per_session: float | None = None  # the server process's CPU over 2xx answers
    healthz_p99_ms: float | None = None  # `/healthz` on a connection of its own, meanwhile
    loop_lag_p99_ms: float | None = None  # the gateway's lag monitor, bucket upper bound
    startup_s: float | None = None  # exec to the first `/healthz` 200
    round: int = 1

    @property
    def key(self) -> tuple[str, str, str]:
        return self.scenario, self.target, self.livekit


def format_table(rows: Sequence[Row]) -> str:
    cells = [HEADER, *(_cells(group) for group in grouped(rows))]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def grouped(rows: Sequence[Row]) -> list[list[Row]]:
    """The rounds of each (scenario, target, livekit), in the order first measured."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault(row.key, []).append(row)
    return list(groups.values())


def median_of(rows: Sequence[Row], figure: Callable[[Row], float | None]) -> float | None:
    values = [v for v in map(figure, rows) if v is not None]
    return statistics.median(values) if values else None


def format_notes(rows: Sequence[Row]) -> str:
    notes = [_latency_bound(g[0]) for g in grouped(rows) if _is_latency_bound(g[0])]
    notes += _ratios(rows)
    notes += _goals(rows)
    notes.append(
        "figures: median over rounds (lowest-highest); CPU us/session: the server process's CPU "
        "(from /proc) over the measured run / its 2xx answers; CPU%: of one core"
    )
    notes.append(
        "lag p99: upper bound of the lag monitor's bucket holding the run's 99th percentile"
    )
    return "\n".join("note: " + note for note in notes)


def _is_latency_bound(row: Row) -> bool:
    return row.target == "gateway" and bool(row.livekit_latency_ms)


def _latency_bound(row: Row) -> str:
    bound = row.connections * 1000 / (row.livekit_latency_ms or 1)
    return (
        f"{row.scenario}: {row.connections} connections / {row.livekit_latency_ms} ms per "
        f"LiveKit call = at most {bound:.0f} sessions/s"
    )


def _ratios(rows: Sequence[Row]) -> list[str]:
    """Per scenario: baseline/gateway in CPU per session (the issue's figure: >= 1.3 leaner),
    and the alternative tree against this one, when measured."""
    notes = []
    for scenario in dict.fromkeys(r.scenario for r in rows):
        mine = [r for r in rows if r.scenario == scenario]
        for over, under in RATIOS:
            above, below = _cpu_median(mine, over), _cpu_median(mine, under)
            if above and below:
                goal = " (goal >= 1.30x)" if over == "baseline" and scenario == "fast" else ""
                notes.append(
                    f"{scenario}: CPU per session {over}/{under} = {above:.0f}/{below:.0f} us = "
                    f"{above / below:.2f}x{goal}"
                )
    return notes


def _cpu_median(rows: Sequence[Row], target: str) -> float | None:
    return median_of([r for r in rows if r.target == target], lambda r: r.cpu_us_per_session)


def _goals(rows: Sequence[Row]) -> list[str]:
    notes = []
    for group in grouped(rows):
        first = group[0]
        if first.target != "gateway":
            continue
        rate = median_of(group, lambda r: r.result.sessions_per_s) or 0.0
        if first.goal_per_s is not None:
            met = "met" if rate >= first.goal_per_s else "NOT met"
            notes.append(
                f"{first.scenario}: {rate:.0f} sessions/s, goal >= {first.goal_per_s:g}: {met}"
            )
        if first.scenario == "overload":
            notes.append(_overload_note(group, rows, rate))
    return notes


def _overload_note(group: Sequence[Row], rows: Sequence[Row], rate: float) -> str:
    fast = [r for r in rows if r.scenario == "fast" and r.target == "gateway"]
    capacity = median_of(fast, lambda r: r.result.sessions_per_s)
    share = f"{rate / capacity:.2f}x of fast's {capacity:.0f}/s" if capacity else "no fast run"
    goal = f"goal >= {OVERLOAD_CAPACITY_SHARE:.2f}x, p99 < 500 ms, healthz p99 < 50 ms"
    return f"overload: {rate:.0f} sessions/s = {share} ({goal}); 503s are shed load"


def _cells(group: Sequence[Row]) -> tuple[str, ...]:
    first = group[0]

    def spread(figure: Callable[[Row], float | None], digits: int = 1) -> str:
        values = [v for v in map(figure, group) if v is not None]
        return median_and_range(values, digits) if values else "-"

    def total(figure: Callable[[WrkResult], int]) -> str:
        return str(sum(figure(r.result) for r in group))

    statuses = "/".join(
        total(f) for f in (lambda w: w.status_500, lambda w: w.status_503, lambda w: w.status_504)
    )
    cpu = "/".join(
        _percent(median_of(group, lambda r, role=role: r.cpu_percent.get(role)))  # type: ignore[misc]
        for role in CPU_ROLES
    )
    return (
        first.scenario, first.target, first.livekit, str(first.connections),
        spread(lambda r: r.result.sessions_per_s, 0), spread(lambda r: r.cpu_us_per_session, 0),
        spread(lambda r: r.result.p50_ms), spread(lambda r: r.result.p99_ms),
        total(lambda w: w.non_2xx), statuses, total(lambda w: w.socket_errors + w.timeouts),
        spread(lambda r: r.healthz_p99_ms), spread(lambda r: r.loop_lag_p99_ms),
        spread(lambda r: r.startup_s, 2), cpu,
    )  # fmt: skip


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def describe_machine() -> str:
    about = machine()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"machine: {about['cpus']} CPUs, {about['platform']}, Python {about['python']}; "
        f"load average {load}"
    )


def write_json(path: Path, rows: Sequence[Row], settings: Mapping[str, Any]) -> None:
    document = {
        "machine": machine(),
        "settings": dict(settings),
        "results": [_row_json(row) for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _row_json(row: Row) -> dict[str, Any]:
    result = row.result
    return {
        "scenario": row.scenario,
        "target": row.target,
        "round": row.round,
        "livekit": row.livekit,
        "livekit_latency_ms": row.livekit_latency_ms,
        "connections": row.connections,
        "duration_s": round(result.duration_s, 3),
        "requests": result.requests,
        "sessions_per_s": round(result.sessions_per_s, 1),
        "cpu_us_per_session": _rounded(row.cpu_us_per_session, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "non_2xx": result.non_2xx,
        "status_500": result.status_500,
        "status_503": result.status_503,
        "status_504": result.status_504,
        "socket_errors": result.socket_errors,
        "timeouts": result.timeouts,
        "healthz_p99_ms": _rounded(row.healthz_p99_ms, 2),
        "loop_lag_p99_ms": row.loop_lag_p99_ms,
        "startup_s": _rounded(row.startup_s, 3),
        "goal_per_s": row.goal_per_s,
        "cpu_percent": {role: _rounded(pct, 1) for role, pct in row.cpu_percent.items()},
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
