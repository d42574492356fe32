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
import compileall
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType

from .ceiling import DEFAULT_TOKEN_LENGTH
from .children import REPO_ROOT, Children, StartFailure, cpu_seconds, pin_servers_apart
from .livekit_server import missing_binary
from .probes import HealthzSampler, loop_lag_buckets, loop_lag_p99_ms
from .report import Row, describe_machine, format_notes, format_table, write_json
from .scenarios import SCENARIOS, Plan, Scenario, TargetKind, make_plan
from .targets import (
    Credentials,
    Target,
    events_env,
    probe_session,
    start_baseline,
    start_ceiling,
    start_event_sink,
    start_gateway,
)
from .wrk import WrkResult, WrkUnavailable, ensure_wrk, run_wrk

SETTLE_S = 1.0
EXIT_GATEWAY_ERRORS = 1
EXIT_CANNOT_START = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = make_plan(
        smoke=args.smoke, duration_s=args.duration, connections=args.connections, threads=None,
        rounds=args.rounds, only_targets=tuple(args.targets.split(",")) if args.targets else None,
        alt_src=args.alt_src,
        gateway_env=dict(item.split("=", 1) for item in args.gateway_env),
    )  # fmt: skip
    compile_tree(REPO_ROOT / "src")  # edited since `make install`: its bytecode is stale
    if args.alt_src:
        compile_tree(Path(args.alt_src) / "src")
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if args.pin:
        print(pin_servers_apart(), file=sys.stderr)
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so every child is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    runnable, skipped = _runnable(scenarios)
    for line in skipped:
        print(line, file=sys.stderr)
    if not runnable:
        return 0
    started_load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        rows = run_all(plan, runnable)
    except KeyboardInterrupt:
        print("interrupted; every child process was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (StartFailure, WrkUnavailable) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    print(f"\n{describe_machine()}\n{format_table(rows)}\n{format_notes(rows)}")
    print(f"load average at the start: {started_load}")
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
    parser.add_argument(
        "--scenario", action="append", choices=[s.name for s in SCENARIOS],
        help="run only this (again: and this)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--rounds", type=_positive, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--gateway-env", action="append", default=[], metavar="NAME=VALUE",
        help="a setting for every gateway started (again: another)",
    )  # fmt: skip
    parser.add_argument("--targets", help="comma-separated: only these targets of a scenario")
    parser.add_argument(
        "--alt-src", metavar="DIR", help="also run the gateway from DIR/src (A/B, interleaved)"
    )
    parser.add_argument(
        "--pin", action="store_true",
        help="the server under test alone on one CPU, everything else on the others",
    )  # fmt: skip
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
    """Every target of the scenario once per round, in the same order, each alone on the machine
    while it is measured and in fresh processes (no gateway lives long enough for its sessions'
    agent deadline: see bench/README.md)."""
    rows: list[Row] = []
    token_length = 0
    for round_number in range(1, plan.rounds + 1):
        for kind in plan.targets_of(scenario):
            label = f"{scenario.name}-{kind}-{round_number}"
            print(f"{label} ...", file=sys.stderr, flush=True)
            with Children(work_dir) as children, _explained(children):
                target = _start(children, plan, scenario, creds, kind, label, token_length)
                length = probe_session(target, creds).token_length
                token_length = token_length or length
                row = measure(wrk, plan, scenario, target, creds, round_number)
                if target.name.startswith("gateway") and _failed(row):
                    print(children.log_tails(), file=sys.stderr)
            rows.append(row)
    return rows


def _start(
    children: Children,
    plan: Plan,
    scenario: Scenario,
    creds: Credentials,
    kind: TargetKind,
    label: str,
    token_length: int,
) -> Target:
    if kind == "ceiling":
        return start_ceiling(children, token_length or DEFAULT_TOKEN_LENGTH, label)
    if kind == "baseline":
        return start_baseline(children, creds, scenario.latency_ms, label)
    if kind == "gateway-standin":
        target = start_gateway(children, creds, "stand-in", 0, label)
        return replace(target, name="gateway")
    src = plan.alt_src if kind.endswith("-alt") else None
    settings = dict(plan.gateway_env)
    if kind.startswith("gateway-events"):
        settings |= events_env(start_event_sink(children, label))
    target = start_gateway(
        children, creds, scenario.backend, scenario.latency_ms, label, src, settings
    )
    return replace(target, name=kind)


def compile_tree(src: Path) -> None:
    """A tree's bytecode, written once (only what is stale): a fresh worktree has none, and a
    checkout edited since `make install` has some out of date; where Python may not write it
    (PYTHONDONTWRITEBYTECODE) each gateway compiled those modules again at every start, so its
    start-up read slower than it is."""
    compileall.compile_dir(src, quiet=1)


def _failed(row: Row) -> bool:
    # Shed load (503 `overloaded`) is the overload scenario's point; anything else is a failure.
    return bool(row.result.non_2xx - row.result.status_503 or row.result.timeouts)


@contextmanager
def _explained(children: Children) -> Iterator[None]:
    """On a start failure, show what the children said while their logs still exist."""
    try:
        yield
    except StartFailure:
        print(children.log_tails(), file=sys.stderr)
        raise


def measure(
    wrk: str, plan: Plan, scenario: Scenario, target: Target, creds: Credentials, round_number: int
) -> Row:
    connections = plan.connections_for(scenario)

    def load(duration_s: int) -> WrkResult:
        return run_wrk(
            wrk, target.session_url, connections=connections, threads=plan.threads,
            duration_s=duration_s, api_key=creds.caller_key,
        )  # fmt: skip

    if plan.warmup_s:
        load(plan.warmup_s)  # connection pools, caches and first-call costs, not measured
        # The warm-up's requests still in flight (up to a LiveKit latency) finish first: they
        # would count against the in-flight bound while the measured run's connections open.
        time.sleep(SETTLE_S)
    watched = scenario.probes and target.name.startswith("gateway")
    lag_before = loop_lag_buckets(target.base_url) if watched else {}
    before = {role: cpu_seconds(child.pid) for role, child in target.processes.items()}
    with HealthzSampler(target.base_url) if scenario.probes else nullcontext() as healthz:
        result = load(plan.duration_s)
    after = {role: cpu_seconds(child.pid) for role, child in target.processes.items()}
    cpu = {
        role: _cpu_percent(before[role], after[role], result.duration_s)
        for role in target.processes
    }
    cpu["wrk"] = _cpu_percent(0.0, result.cpu_s, result.duration_s)
    lag = loop_lag_p99_ms(lag_before, loop_lag_buckets(target.base_url)) if watched else None
    goal = plan.goal_for(scenario) if target.name == "gateway" else None
    return Row(
        scenario.name, target.name, target.livekit, target.livekit_latency_ms, connections, result,
        cpu, goal, _per_session_us(before["server"], after["server"], result),
        healthz.p99_ms() if healthz else None, lag, target.startup_s, round_number,
    )  # fmt: skip


def _per_session_us(before: float | None, after: float | None, result: WrkResult) -> float | None:
    sessions = result.requests - result.non_2xx
    if before is None or after is None or not sessions:
        return None
    return (after - before) * 1e6 / sessions


def _cpu_percent(before: float | None, after: float | None, wall_s: float) -> float | None:
    if before is None or after is None or not wall_s:
        return None
    return 100 * (after - before) / wall_s


def _verdict(rows: Sequence[Row]) -> int:
    failed = [r for r in rows if r.target.startswith("gateway") and _failed(r)]
    for row in failed:
        print(
            f"FAIL {row.scenario}: the gateway answered {row.result.non_2xx} requests non-2xx "
            f"and left {row.result.timeouts} unanswered",
            file=sys.stderr,
        )
    return EXIT_GATEWAY_ERRORS if failed else 0


if __name__ == "__main__":
    sys.exit(main())
