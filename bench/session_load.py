"""Load `POST /api/voice/session` with wrk: the gateway (in front of the LiveKit stand-in) against a
bare Starlette endpoint of the same shape, and the gateway in front of the real livekit-server
against the stand-in, all real processes on 127.0.0.1.

    uv run python -m bench.session_load            # the full benchmark (~10 s per run)
    uv run python -m bench.session_load --smoke    # CI: seconds of load, fails only on errors

Exit status: 0 when the gateway answered every request 2xx; 1 when it answered any non-2xx or
left a request unanswered; 2 when something could not start (wrk, the stand-in, the gateway) or
the first session, asked before any load, failed.
Speed never fails a run: the goal is printed beside the result.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from .children import Children, StartFailure, cpu_seconds
from .livekit_server import missing_binary
from .report import Row, describe_machine, format_notes, format_table, write_json
from .scenarios import SCENARIOS, Backend, Plan, Scenario, make_plan
from .targets import Credentials, Target, probe_session, start_ceiling, start_gateway
from .wrk import WrkResult, WrkUnavailable, ensure_wrk, run_wrk

EXIT_GATEWAY_ERRORS = 1
EXIT_CANNOT_START = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = make_plan(
        smoke=args.smoke, duration_s=args.duration, connections=args.connections, threads=None
    )
    scenarios = [s for s in SCENARIOS if args.scenario in (None, s.name)]
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so every child is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    runnable, skipped = _runnable(scenarios)
    for line in skipped:
        print(line, file=sys.stderr)
    if not runnable:
        return 0
    try:
        rows = run_all(plan, runnable)
    except KeyboardInterrupt:
        print("interrupted; every child process was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (StartFailure, WrkUnavailable) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    print(f"\n{describe_machine()}\n{format_table(rows)}\n{format_notes(rows)}")
    if args.json:
        write_json(args.json, rows, asdict(plan))
    return _verdict(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.session_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="seconds of load, few connections")
    parser.add_argument("--duration", type=_positive, help="seconds per measured run")
    parser.add_argument("--connections", type=_positive, help="connections, every scenario")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], help="run only this")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def _runnable(scenarios: Sequence[Scenario]) -> tuple[list[Scenario], list[str]]:
    """The scenarios this machine can run, and one line for each it cannot (smoke or not)."""
    runnable: list[Scenario] = []
    skipped: list[str] = []
    for scenario in scenarios:
        why = missing_binary() if scenario.backend == "livekit-server" else None
        if why:
            skipped.append(f"{scenario.name}: skipped: {why}")
        else:
            runnable.append(scenario)
    return runnable, skipped


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_all(plan: Plan, scenarios: Sequence[Scenario]) -> list[Row]:
    wrk = ensure_wrk()
    creds = Credentials()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="voice-gateway-bench-") as work_dir:
        for scenario in scenarios:
            rows += run_scenario(Path(work_dir), wrk, plan, scenario, creds)
    return rows


def run_scenario(
    work_dir: Path, wrk: str, plan: Plan, scenario: Scenario, creds: Credentials
) -> list[Row]:
    """Each target alone on the machine while it is measured: the gateway in front of the
    scenario's LiveKit, then the ceiling (the stand-in scenarios) or the gateway in front of the
    stand-in at the same connections (the real server's scenario)."""
    first, token_length = measure_gateway(
        work_dir, wrk, plan, scenario, creds, scenario.backend, scenario.latency_ms
    )
    if scenario.backend != "stand-in":
        second, _ = measure_gateway(work_dir, wrk, plan, scenario, creds, "stand-in", 0)
        return [first, second]
    print(f"{scenario.name}: ceiling ...", file=sys.stderr, flush=True)
    with Children(work_dir) as children, _explained(children):
        ceiling = start_ceiling(children, token_length, scenario.name)
        probe_session(ceiling, creds)
        ceiling_row = measure(wrk, plan, scenario, ceiling, creds)
    return [first, ceiling_row]


def measure_gateway(
    work_dir: Path,
    wrk: str,
    plan: Plan,
    scenario: Scenario,
    creds: Credentials,
    backend: Backend,
    latency_ms: int,
) -> tuple[Row, int]:
    """The gateway's row, and the length of the join token it hands out."""
    print(f"{scenario.name}: gateway, {backend} ...", file=sys.stderr, flush=True)
    with Children(work_dir) as children, _explained(children):
        gateway = start_gateway(children, creds, backend, latency_ms, scenario.name)
        token_length = probe_session(gateway, creds).token_length
        row = measure(wrk, plan, scenario, gateway, creds)
        if row.result.non_2xx or row.result.timeouts:
            print(children.log_tails(), file=sys.stderr)
    return row, token_length


@contextmanager
def _explained(children: Children) -> Iterator[None]:
    """On a start failure, show what the children said while their logs still exist."""
    try:
        yield
    except StartFailure:
        print(children.log_tails(), file=sys.stderr)
        raise


def measure(wrk: str, plan: Plan, scenario: Scenario, target: Target, creds: Credentials) -> Row:
    connections = plan.connections_for(scenario)

    def load(duration_s: int) -> WrkResult:
        return run_wrk(
            wrk, target.session_url, connections=connections, threads=plan.threads,
            duration_s=duration_s, api_key=creds.caller_key,
        )  # fmt: skip

    if plan.warmup_s:
        load(plan.warmup_s)  # connection pools, caches and first-call costs, not measured
    before = {role: cpu_seconds(child.pid) for role, child in target.processes.items()}
    result = load(plan.duration_s)
    cpu = {
        role: _cpu_percent(before[role], cpu_seconds(child.pid), result.duration_s)
        for role, child in target.processes.items()
    }
    cpu["wrk"] = _cpu_percent(0.0, result.cpu_s, result.duration_s)
    goal = plan.goal_for(scenario) if target.name == "gateway" else None
    return Row(
        scenario.name, target.name, target.livekit, target.livekit_latency_ms, connections, result,
        cpu, goal,
    )  # fmt: skip


def _cpu_percent(before: float | None, after: float | None, wall_s: float) -> float | None:
    if before is None or after is None or not wall_s:
        return None
    return 100 * (after - before) / wall_s


def _verdict(rows: Sequence[Row]) -> int:
    failed = [r for r in rows if r.target == "gateway" and (r.result.non_2xx or r.result.timeouts)]
    for row in failed:
        print(
            f"FAIL {row.scenario}: the gateway answered {row.result.non_2xx} requests non-2xx "
            f"and left {row.result.timeouts} unanswered",
            file=sys.stderr,
        )
    return EXIT_GATEWAY_ERRORS if failed else 0


if __name__ == "__main__":
    sys.exit(main())
