"""Benchmarks of the session lifecycle's two read-heavy features, as real processes on 127.0.0.1:

- `wait-for-agent`: the time from request to 201 of `POST /api/voice/session` with
  `"wait_for_agent": true`, with the real livekit-server and the example agent
  (examples/agent/agent.py), beside the same POST without it; one client, then a few at once.
- `list`: `GET /api/voice/sessions` loaded with wrk at 100 and 1,000 live sessions (the LiveKit
  stand-in): requests/s, p50/p99, the gateway's CPU per request, ListRooms calls per request.

    uv run python -m bench.lifecycle            # both parts, 3 rounds each (~8 minutes)
    uv run python -m bench.lifecycle --smoke    # CI: a few sessions, 1 s of load, one round

Each round measures every shape once, in the same order, so rounds interleave; the summary gives
the median over rounds and the range. Exit status: 0 when every request was answered as it
should be; 1 when any was not (a non-2xx, a timeout, a session without its agent); 2 when something
could not start. Speed never fails a run. `wait-for-agent` is skipped, with one line saying how to
build it, without .tools/bin/livekit-server.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from . import agent_wait, list_load
from .agent_wait import MeasureFailure, Shape, WaitRun
from .children import Children, StartFailure
from .list_load import ListRun
from .livekit_server import missing_binary
from .report import describe_machine, machine
from .spread import median_and_range
from .targets import Credentials
from .wrk import WrkUnavailable, ensure_wrk

EXIT_FAILED = 1
EXIT_CANNOT_START = 2
EXIT_INTERRUPTED = 130
PARTS = ("wait-for-agent", "list")
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    rounds: int
    sessions: int  # per wait-for-agent shape and round
    concurrency: int  # the wait-for-agent shape with several clients
    list_sizes: tuple[int, ...]
    list_connections: int
    duration_s: int
    warmup_s: int


FULL = Plan(
    rounds=3, sessions=50, concurrency=5, list_sizes=(100, 1000), list_connections=4,
    duration_s=10, warmup_s=2,
)  # fmt: skip
SMOKE = Plan(
    rounds=1, sessions=3, concurrency=2, list_sizes=(10, 50), list_connections=2, duration_s=1,
    warmup_s=0,
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if args.rounds:
        plan = Plan(**{**plan.__dict__, "rounds": args.rounds})
    parts = [args.part] if args.part else list(PARTS)
    signal.signal(signal.SIGTERM, _interrupt)
    if "wait-for-agent" in parts and (why := missing_binary()):
        print(f"wait-for-agent: skipped: {why}", file=sys.stderr)
        parts.remove("wait-for-agent")
    try:
        waits, lists = run(plan, parts)
    except KeyboardInterrupt:
        print("interrupted; every child process was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MeasureFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (StartFailure, WrkUnavailable) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    print(f"\n{describe_machine()}")
    if waits:
        print(f"\n{format_waits(waits, plan)}")
    if lists:
        print(f"\n{format_lists(lists)}")
    if args.json:
        args.json.write_text(json.dumps(_document(plan, waits, lists), indent=2) + "\n")
    return _verdict(lists)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lifecycle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a few sessions, 1 s of load")
    parser.add_argument("--part", choices=PARTS, help="run only this part")
    parser.add_argument("--rounds", type=int, help="rounds of every shape (default 3, smoke 1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(plan: Plan, parts: Sequence[str]) -> tuple[list[WaitRun], list[ListRun]]:
    creds = Credentials()
    waits: list[WaitRun] = []
    lists: list[ListRun] = []
    with tempfile.TemporaryDirectory(prefix="voice-gateway-bench-") as work_dir:
        if "wait-for-agent" in parts:
            waits = _run_waits(Path(work_dir), plan, creds)
        if "list" in parts:
            lists = _run_lists(Path(work_dir), plan, creds)
    return waits, lists


def _run_waits(work_dir: Path, plan: Plan, creds: Credentials) -> list[WaitRun]:
    shapes = [
        Shape(mode, concurrency)
        for concurrency in (1, plan.concurrency)
        for mode in ("baseline", "wait")
    ]
    print("wait-for-agent: livekit-server, example agent, gateway ...", file=sys.stderr)
    with Children(work_dir) as children:
        try:
            stack = agent_wait.start_stack(children, creds)
            runs = agent_wait.run_shapes(stack, creds, shapes, plan.sessions, plan.rounds)
            agent_wait.check_alive(stack)
        except (StartFailure, MeasureFailure):
            print(children.log_tails(), file=sys.stderr)
            raise
    return runs


def _run_lists(work_dir: Path, plan: Plan, creds: Credentials) -> list[ListRun]:
    wrk = ensure_wrk()
    runs: list[ListRun] = []
    with Children(work_dir) as children:
        try:
            stacks = []
            for size in plan.list_sizes:
                print(f"list: stand-in and gateway, {size} sessions ...", file=sys.stderr)
                stacks.append(list_load.start_stack(children, creds, size))
            for round_number in range(plan.rounds):
                print(f"list: round {round_number + 1} of {plan.rounds} ...", file=sys.stderr)
                runs += [_measure_list(wrk, stack, creds, query, plan) for stack in stacks
                         for query in list_load.QUERIES]  # fmt: skip
            list_load.check_alive(stacks)
        except StartFailure:
            print(children.log_tails(), file=sys.stderr)
            raise
        if any(r.result.non_2xx or r.result.timeouts for r in runs):
            print(children.log_tails(), file=sys.stderr)
    return runs


def _measure_list(
    wrk: str, stack: list_load.ListStack, creds: Credentials, query: str, plan: Plan
) -> ListRun:
    return list_load.measure(
        wrk, stack, creds, query, connections=plan.list_connections, duration_s=plan.duration_s,
        warmup_s=plan.warmup_s,
    )  # fmt: skip


def format_waits(runs: Sequence[WaitRun], plan: Plan) -> str:
    header = ("POST /api/voice/session", "clients", "p50 ms", "p99 ms", "201 after join p50/p99 ms")
    lines = [header]
    for shape in _unique(run.shape for run in runs):
        mine = [run for run in runs if run.shape == shape]
        joins = [run for run in mine if run.after_join_s]
        after = (
            f"{median_and_range([r.after_join_p(50) or 0 for r in joins], 0)} / "
            f"{median_and_range([r.after_join_p(99) or 0 for r in joins], 0)}"
            if joins
            else "-"
        )
        name = "wait_for_agent: true" if shape.mode == "wait" else "without wait_for_agent"
        lines.append((
            name, str(shape.concurrency), median_and_range([r.p(50) for r in mine], 0),
            median_and_range([r.p(99) for r in mine], 0), after,
        ))  # fmt: skip
    notes = [
        f"note: {plan.sessions} sessions per shape and round, {plan.rounds} round(s): "
        f"median over rounds (lowest-highest); p99 of {plan.sessions} is the slowest session",
        "note: 201 after join: the answer's arrival minus the agent's joined_at (LiveKit's clock)",
        "note: every session deleted once its agent was in the room (the baseline's too)",
    ]
    return _table(lines) + "\n" + "\n".join(notes)


def format_lists(runs: Sequence[ListRun]) -> str:
    header = (
        "GET /api/voice/sessions", "live", "conns", "requests/s", "p50 ms", "p99 ms",
        "gw CPU us/req", "CPU% gw/stand-in", "ListRooms/req", "non-2xx",
    )  # fmt: skip
    lines = [header]
    for sessions, query in _unique((run.sessions, run.query) for run in runs):
        mine = [run for run in runs if (run.sessions, run.query) == (sessions, query)]
        lines.append((
            f"?{query}", str(sessions), str(mine[0].connections),
            median_and_range([r.result.sessions_per_s for r in mine], 0),
            median_and_range([r.result.p50_ms for r in mine], 1),
            median_and_range([r.result.p99_ms for r in mine], 1),
            median_and_range([r.cpu_us_per_request("gateway") or 0 for r in mine], 0),
            f"{median_and_range([r.cpu_percent('gateway') or 0 for r in mine], 0)}/"
            f"{median_and_range([r.cpu_percent('livekit') or 0 for r in mine], 0)}",
            median_and_range([r.list_rooms_per_request for r in mine], 3),
            str(sum(r.result.non_2xx + r.result.timeouts for r in mine)),
        ))  # fmt: skip
    notes = [
        "note: median over rounds (lowest-highest); CPU from /proc over each measured run",
        "note: every live session is waiting_for_agent, so ?status=active reads all and lists none",
    ]
    return _table(lines) + "\n" + "\n".join(notes)


def _unique(items: Iterable[T]) -> list[T]:
    seen: list[T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _table(lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    rows = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(row.rstrip() for row in rows)


def _document(plan: Plan, waits: Sequence[WaitRun], lists: Sequence[ListRun]) -> dict[str, Any]:
    return {
        "machine": machine(),
        "plan": plan.__dict__,
        "wait_for_agent": [
            {"mode": r.shape.mode, "clients": r.shape.concurrency, "seconds": r.seconds,
             "after_join_s": r.after_join_s}
            for r in waits
        ],
        "list": [
            {"sessions": r.sessions, "query": r.query, "connections": r.connections,
             "requests": r.result.requests, "requests_per_s": r.result.sessions_per_s,
             "p50_ms": r.result.p50_ms, "p99_ms": r.result.p99_ms,
             "gateway_cpu_us_per_request": r.cpu_us_per_request("gateway"),
             "list_rooms_per_request": r.list_rooms_per_request,
             "non_2xx": r.result.non_2xx, "timeouts": r.result.timeouts}
            for r in lists
        ],
    }  # fmt: skip


def _verdict(lists: Sequence[ListRun]) -> int:
    failed = [r for r in lists if r.result.non_2xx or r.result.timeouts]
    for run in failed:
        print(
            f"FAIL list {run.sessions} ?{run.query}: {run.result.non_2xx} non-2xx, "
            f"{run.result.timeouts} unanswered",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
