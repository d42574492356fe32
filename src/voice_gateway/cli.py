"""The `voice-gateway` command: serve (production), dev (with the embedded stand-in), doctor, and
events (dead session events, listed and re-sent: cli_events.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import anyio
from pydantic import ValidationError

from .cli_events import add_event_commands
from .doctor import run_checks, settings_problems
from .ops.logs import LogFormat, configure_logging
from .ops.server import serve_until_stopped
from .settings import Settings, describe_settings_error
from .web.app import create_app

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"  # noqa: S105  # LiveKit's own --dev pair, public by design
PUBLIC_URL_ENV = "VOICE_GATEWAY_PUBLIC_LIVEKIT_URL"
AUTH_OFF = "caller authentication is OFF: anyone who reaches {gateway} gets tokens"
AUTH_ON = "caller authentication is ON (from your settings), as in production"
DEV_BANNER = """\
==============================================================================
 voice-gateway DEVELOPMENT MODE
 * {authentication}
 * LiveKit is an in-process STAND-IN at {livekit}: it speaks the RoomService
   API but is NOT a media server; clients cannot join rooms or talk to agents
 * development credentials ({key} / {secret}); never use them in production
=============================================================================="""


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voice-gateway", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway (settings from env and .env)")
    _add_listen_args(serve, host="0.0.0.0")  # noqa: S104  # a container's port must be reachable
    serve.set_defaults(run=_serve)
    dev = commands.add_parser("dev", help="run the gateway with an embedded LiveKit stand-in")
    _add_listen_args(dev, host="127.0.0.1")
    dev.add_argument("--livekit-port", type=int, default=7880, help="stand-in port")
    dev.set_defaults(run=_dev)
    doctor = commands.add_parser("doctor", help="check settings and LiveKit, then explain")
    doctor.set_defaults(run=_doctor)
    add_event_commands(commands, load_settings)
    return parser


def _add_listen_args(parser: argparse.ArgumentParser, host: str) -> None:
    parser.add_argument("--host", default=host, help=f"interface to bind (default {host})")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")


def _serve(args: argparse.Namespace) -> None:
    settings = load_settings()
    if problems := settings_problems(settings):
        _exit_with(" ".join(problems))
    _run_gateway(settings, args.host, args.port, "json")


def _dev(args: argparse.Namespace) -> None:
    from .standin import StandIn  # only dev needs the stand-in

    # LiveKit's dev secret is short on purpose; PyJWT would warn on every token.
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    # The stand-in tells the gateway of room events, as a LiveKit server with webhooks would.
    webhook_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
    standin = StandIn(
        DEV_API_KEY,
        DEV_API_SECRET,
        host="127.0.0.1",
        port=args.livekit_port,
        webhook_urls=[f"http://{_url_host(webhook_host)}:{args.port}/api/voice/webhook"],
    )
    standin.start()
    try:
        settings = load_settings(
            livekit_url=standin.url,
            livekit_api_key=DEV_API_KEY,
            livekit_api_secret=DEV_API_SECRET,
            public_livekit_url=os.environ.get(PUBLIC_URL_ENV, f"ws://localhost:{standin.port}"),
        )
        gateway = f"http://{args.host}:{args.port}"
        authentication = AUTH_ON if settings.authentication_configured else AUTH_OFF
        print(
            DEV_BANNER.format(
                authentication=authentication.format(gateway=gateway),
                livekit=standin.url,
                key=DEV_API_KEY,
                secret=DEV_API_SECRET,
            ),
            file=sys.stderr,
        )
        _run_gateway(settings, args.host, args.port, "text")
    finally:
        # Ctrl-C under `make run` reaches make, uv and this process, and uv passes its own on:
        # the gateway has drained on the first; a second must not break off the stand-in's stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        standin.stop()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _doctor(args: argparse.Namespace) -> None:
    results = anyio.run(run_checks, load_settings())
    for passed, sentence in results:
        print(("ok       " if passed else "PROBLEM  ") + sentence)
    if not all(passed for passed, _ in results):
        sys.exit(1)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or one line naming the bad variable and exit status 2."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        _exit_with(describe_settings_error(exc))


def _run_gateway(settings: Settings, host: str, port: int, log_format: LogFormat) -> None:
    log_writer = configure_logging(log_format, settings.log_level)
    try:
        serve_until_stopped(create_app, settings, host, port)
    finally:
        log_writer.stop()  # writes out the lines still queued


def _exit_with(message: str) -> NoReturn:
    print(f"voice-gateway: {message}", file=sys.stderr)
    sys.exit(2)
