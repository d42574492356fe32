"""Instructions per session: the gateway app's work counted by valgrind, for A/B runs of changes
too small for `bench.session_load` to see.

On this project's VMs the CPU time of one session moves ±10-12% from run to run, so a change
worth 3% needs dozens of interleaved runs to show. An instruction count does not depend on the
machine's other load: two runs of the same tree agree within ~1%. Each tree's app
(`bench/in_process.py`: the app as `serve` builds it, over ASGI, no HTTP server) creates
`--requests` sessions against one stand-in, and the count is the difference between that run and
a short one (start-up and shutdown cancel out), divided by the sessions between them.

    python -m bench.instructions --alt-src /path/to/other/checkout

Needs valgrind (Debian: `apt-get install valgrind`); takes about a minute per tree. It counts
instructions, not time: a change that trades instructions for waiting (a syscall, a thread hop)
shows here as a gain it may not be, so `bench.session_load` still has the last word.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .children import REPO_ROOT, Children
from .targets import Credentials, child_env, gateway_env, start_standin

SHORT_RUN = 200  # sessions of the run whose count is subtracted
INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


class CountFailed(Exception):
    """valgrind or the app failed; the message says which and why."""


def count_instructions(src: Path, env: dict[str, str], requests: int) -> int:
    """Instructions the whole process ran to create `requests` sessions from `src`."""
    argv = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "bench.in_process", "--requests", str(requests),
    ]  # fmt: skip
    # The system allocator, not pymalloc: valgrind counts what runs either way, and this one
    # gives counts that repeat.
    python_path = f"{src / 'src'}{os.pathsep}{REPO_ROOT}"
    run_env = {**env, "PYTHONPATH": python_path, "PYTHONMALLOC": "malloc"}
    done = subprocess.run(argv, env=run_env, capture_output=True, text=True, check=False)
    found = INSTRUCTIONS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise CountFailed(f"{src}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_session(src: Path, env: dict[str, str], requests: int) -> int:
    short = count_instructions(src, env, SHORT_RUN)
    long = count_instructions(src, env, SHORT_RUN + requests)
    return (long - short) // requests


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alt-src", type=Path, help="also count DIR's gateway (DIR/src)")
    parser.add_argument("--requests", type=int, default=1000, help="sessions counted per tree")
    parser.add_argument("--rounds", type=int, default=1, help="counts per tree, interleaved")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("bench.instructions: needs valgrind (apt-get install valgrind)")
    trees = [("this checkout", REPO_ROOT)] + ([("alt", args.alt_src)] if args.alt_src else [])
    creds = Credentials()
    with tempfile.TemporaryDirectory() as scratch, Children(Path(scratch)) as children:
        _, livekit_url = start_standin(children, creds, 0, "instructions")
        env = child_env(gateway_env(creds, livekit_url))
        counts: dict[str, list[int]] = {name: [] for name, _ in trees}
        for _ in range(args.rounds):
            for name, src in trees:
                counts[name].append(per_session(src, env, args.requests))
                print(f"{name}: {counts[name][-1]:,} instructions per session", flush=True)
    report(counts)


def report(counts: dict[str, list[int]]) -> None:
    medians = {name: sorted(found)[len(found) // 2] for name, found in counts.items()}
    for name, median in medians.items():
        print(f"{name:>14}: {median:,} (of {', '.join(f'{c:,}' for c in counts[name])})")
    if len(medians) == 2:
        this, alt = medians.values()
        print(f"this checkout / alt: {this / alt:.3f}")


if __name__ == "__main__":
    try:
        main()
    except CountFailed as exc:
        sys.exit(f"bench.instructions: {exc}")
