"""The results: one row per (scenario, target), printed as a table, optionally written as JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .wrk import WrkResult

CPU_ROLES = ("server", "livekit", "wrk")
HEADER = (
    "scenario", "target", "livekit", "conns", "sessions/s", "p50 ms", "p99 ms", "non-2xx", "errors",
    "gw/ceiling", "goal", "CPU% server/livekit/wrk",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    scenario: str
    target: str  # "gateway" or "ceiling"
    livekit: str  # behind the gateway: "stand-in 0 ms", "livekit-server"; "-" for the ceiling
    livekit_latency_ms: int | None  # the stand-in's per call; None without a stand-in
    connections: int
    result: WrkResult
    cpu_percent: Mapping[str, float | None]  # by role, over the measured run
    goal_per_s: float | None = None

    @property
    def goal_met(self) -> bool | None:
        if self.goal_per_s is None:
            return None
        return self.result.sessions_per_s >= self.goal_per_s


def ratio_to_ceiling(row: Row, rows: Sequence[Row]) -> float | None:
    """The gateway's sessions/s over the ceiling's in the same scenario."""
    ceiling = next((r for r in rows if r.scenario == row.scenario and r.target == "ceiling"), None)
    if row.target != "gateway" or ceiling is None or not ceiling.result.sessions_per_s:
        return None
    return row.result.sessions_per_s / ceiling.result.sessions_per_s


def format_table(rows: Sequence[Row]) -> str:
    cells = [HEADER, *(_cells(row, rows) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_notes(rows: Sequence[Row]) -> str:
    """What bounds each latency-bound run (every connection waits on LiveKit once per session),
    and how the real server compares with the stand-in at the same connections."""
    notes = [
        f"{row.scenario}: {row.connections} connections / {row.livekit_latency_ms} ms per "
        f"LiveKit call = at most {row.connections * 1000 / row.livekit_latency_ms:.0f} sessions/s"
        for row in rows
        if row.target == "gateway" and row.livekit_latency_ms
    ]
    notes += [_against_standin(real, rows) for real in rows if real.livekit == "livekit-server"]
    notes.append("CPU%: of one core, over the measured run; server = gateway or ceiling process")
    return "\n".join("note: " + note for note in notes)


def standin_pair(row: Row, rows: Sequence[Row]) -> Row | None:
    """The gateway in front of the stand-in in the same scenario as `row` (the real server)."""
    return next(
        (r for r in rows if r.scenario == row.scenario and r.livekit.startswith("stand-in")), None
    )


def _against_standin(real: Row, rows: Sequence[Row]) -> str:
    standin = standin_pair(real, rows)
    about = f"{real.scenario}: {real.result.sessions_per_s:.0f} sessions/s with livekit-server"
    if standin is None or not standin.result.sessions_per_s:
        return about
    ratio = real.result.sessions_per_s / standin.result.sessions_per_s
    return (
        f"{about}, {standin.result.sessions_per_s:.0f} with the {standin.livekit} at the same "
        f"{real.connections} connections ({ratio:.2f}x)"
    )


def _cells(row: Row, rows: Sequence[Row]) -> tuple[str, ...]:
    result, ratio = row.result, ratio_to_ceiling(row, rows)
    goal = "" if row.goal_per_s is None else f">={row.goal_per_s:g}/s " + _verdict(row.goal_met)
    cpu = "/".join(_percent(row.cpu_percent.get(role)) for role in CPU_ROLES)
    return (
        row.scenario, row.target, row.livekit, str(row.connections), f"{result.sessions_per_s:.1f}",
        f"{result.p50_ms:.1f}", f"{result.p99_ms:.1f}", str(result.non_2xx),
        str(result.socket_errors + result.timeouts), "-" if ratio is None else f"{ratio:.2f}",
        goal, cpu,
    )  # fmt: skip


def _verdict(met: bool | None) -> str:
    return "met" if met else "NOT met"


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
    return f"machine: {about['cpus']} CPUs, {about['platform']}, Python {about['python']}"


def write_json(path: Path, rows: Sequence[Row], settings: Mapping[str, Any]) -> None:
    document = {
        "machine": machine(),
        "settings": dict(settings),
        "results": [_row_json(row, rows) for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _row_json(row: Row, rows: Sequence[Row]) -> dict[str, Any]:
    result = row.result
    return {
        "scenario": row.scenario,
        "target": row.target,
        "livekit": row.livekit,
        "livekit_latency_ms": row.livekit_latency_ms,
        "connections": row.connections,
        "duration_s": round(result.duration_s, 3),
        "requests": result.requests,
        "sessions_per_s": round(result.sessions_per_s, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "timeouts": result.timeouts,
        "ratio_to_ceiling": _rounded(ratio_to_ceiling(row, rows), 3),
        "goal_per_s": row.goal_per_s,
        "goal_met": row.goal_met,
        "cpu_percent": {role: _rounded(pct, 1) for role, pct in row.cpu_percent.items()},
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
