"""`python -m voice_gateway.standin`: the stand-in as its own process, for benchmarks.

Runs until SIGINT or SIGTERM. uvicorn picks uvloop and httptools when they are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Sequence
from types import FrameType

import uvicorn

from .server import standin_config
from .state import StandInState

BANNER = (
    "LiveKit STAND-IN on http://{host}:{port}: Twirp RoomService only, "
    "NOT a media server (no WebRTC, no /rtc); key {key!r}, latency {latency_ms} ms"
)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    state = StandInState(
        {args.api_key: args.api_secret},
        close_empty_rooms=not args.keep_rooms,
        webhook_urls=tuple(args.webhook_url),
    )
    state.faults.set_latency(args.latency_ms / 1000)
    config = standin_config(
        state,
        host=args.host,
        port=args.port,
        log_config=uvicorn.config.LOGGING_CONFIG,
        log_level=args.log_level,
    )
    print(BANNER.format(**vars(args), key=args.api_key), flush=True)
    # uvicorn shuts down gracefully on either signal, then re-raises it to the previous
    # handler: make both end the process with status 0 rather than a traceback or a kill.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voice_gateway.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", default="devkey")
    parser.add_argument("--api-secret", default="secret")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every call")
    parser.add_argument(
        "--keep-rooms", action="store_true", help="never close rooms past their empty_timeout"
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        help="send signed webhooks here (repeatable)",
    )
    parser.add_argument("--log-level", default="warning")
    return parser


if __name__ == "__main__":
    main()
