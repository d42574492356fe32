"""The ceiling: a bare Starlette endpoint of the same shape as `POST /api/voice/session`.

It parses the same JSON body and answers a 201 JSON body of the same fields and size, with a fixed
fake token: no LiveKit call, no signing, no validation models, no authentication, no limits, no
metrics. It logs as `voice-gateway serve` does (`configure_logging("json", level)`: every line
through the writer thread, one JSON access line per request with its request id, uvicorn's own
access log off) and is served by uvicorn with serve's options, so the gap between the two is the
gateway's own work, not a logging cost only one of them pays.

Run: python -m bench.ceiling --host 127.0.0.1 --port 8100 --token-length 900
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voice_gateway.ids import new_request_id
from voice_gateway.ops.logs import configure_logging, current_request_id
from voice_gateway.web.middleware.request_observer import (
    Observation,
    log_access,
    logged_path,
    route_template,
)

SESSION_ID = "sess_BenchCeiling0000000000"  # as long as a real one: "sess_" and 22 characters
DEFAULT_TOKEN_LENGTH = 900
LIVEKIT_URL = "ws://127.0.0.1:7880"
LOG_LEVEL = "info"  # the gateway's default VOICE_GATEWAY_LOG_LEVEL


class AccessLog:
    """The gateway's access line, written as its RequestObserver writes it:
    a fresh request id in the context, then one `voice_gateway.access` line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current_request_id.set(new_request_id())
        started, status = time.perf_counter(), 500

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observing)
        finally:
            route = route_template(scope.get("route"))
            duration_s = time.perf_counter() - started
            log_access(Observation(scope["method"], logged_path(scope), route, status, duration_s))


def create_app(token_length: int = DEFAULT_TOKEN_LENGTH) -> Starlette:
    token = "eyJ" + "x" * max(0, token_length - 3)

    async def create_session(request: Request) -> Response:
        body = json.loads(await request.body())
        hours = float(body.get("session_duration_hours", 1))
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
        created = {
            "session_id": SESSION_ID,
            "room_name": f"foundry_{body['user_id']}_{body['agent_id']}_{SESSION_ID}",
            "token": token,
            "livekit_url": LIVEKIT_URL,
            "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        }
        # The gateway's token-bearing answers carry these headers too; same bytes on the wire.
        headers = {"Cache-Control": "no-store", "X-Request-ID": current_request_id.get() or ""}
        return Response(json.dumps(created), 201, headers, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/voice/session", create_session, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[Middleware(AccessLog)],
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-length", type=int, default=DEFAULT_TOKEN_LENGTH)
    args = parser.parse_args(argv)
    # As voice_gateway.cli._run_gateway and server_config with no trusted proxies, but a plain
    # uvicorn.Server: the gateway's GatewayServer only changes what signals do.
    log_writer = configure_logging("json", LOG_LEVEL)
    # uvicorn stops gracefully on SIGTERM, then raises it again for the previous handler: make
    # that an exit, so the writer thread still writes out the lines queued before it.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            create_app(args.token_length),
            host=args.host,
            port=args.port,
            workers=1,
            server_header=False,
            access_log=False,
            log_config=None,
            log_level=LOG_LEVEL,
            reset_contextvars=True,
            proxy_headers=False,
        )
    finally:
        log_writer.stop()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
