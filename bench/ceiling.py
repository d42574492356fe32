"""The ceiling: a bare Starlette endpoint of the same shape as `POST /api/voice/session`.

It parses the same JSON body and answers a 201 JSON body of the same fields and size, with a fixed
fake token: no LiveKit call, no signing, no validation models. Served by uvicorn exactly as
`voice-gateway serve` serves the gateway, so the gap between the two is the gateway's own work.

Run: python -m bench.ceiling --host 127.0.0.1 --port 8100 --token-length 900
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SESSION_ID = "sess_BenchCeiling0000000000"
DEFAULT_TOKEN_LENGTH = 900
LIVEKIT_URL = "ws://127.0.0.1:7880"


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
        headers = {"Cache-Control": "no-store", "X-Request-ID": uuid.uuid4().hex}
        return Response(json.dumps(created), 201, headers, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/voice/session", create_session, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-length", type=int, default=DEFAULT_TOKEN_LENGTH)
    args = parser.parse_args(argv)
    # The same call as voice_gateway.cli._run_gateway: one worker, default logging, no Server.
    app = create_app(args.token_length)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, server_header=False)


if __name__ == "__main__":
    main()
