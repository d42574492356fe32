"""The naive baseline: the seed's app fixed the obvious way, as a Python user would write it.

One `LiveKitAPI` built in the lifespan, `await lkapi.room.create_room(...)` (the SDK signs its own
per-call JWT on the loop), the join token signed inline with `AccessToken(...).to_jwt()` on the
loop, and nothing else: no authentication, validation models, limits, metrics, request ids or
logs. Served by uvicorn with its defaults (httptools, uvloop), the access log off. The bench
loads it beside the gateway, so the gateway's CPU per session has a yardstick a user would know.

Run: python -m bench.baseline --host 127.0.0.1 --port 8200 (LIVEKIT_URL, LIVEKIT_API_KEY and
LIVEKIT_API_SECRET from the environment, as the SDK reads them)
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import uvicorn
from livekit import api
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PUBLIC_LIVEKIT_URL = "ws://127.0.0.1:7880"
EMPTY_TIMEOUT_S = 300


def create_app() -> Starlette:
    livekit: dict[str, api.LiveKitAPI] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        livekit["api"] = api.LiveKitAPI()  # needs the running loop: built here, not at import
        yield
        await livekit["api"].aclose()

    async def create_session(request: Request) -> Response:
        body = await request.json()
        user_id, agent_id = body["user_id"], body["agent_id"]
        hours = float(body.get("session_duration_hours", 1))
        session_id = "sess_" + secrets.token_urlsafe(16)
        room_name = f"foundry_{user_id}_{agent_id}_{session_id}"
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
        metadata = json.dumps(
            {"session_id": session_id, "user_id": user_id, "agent_id": agent_id,
             "expires_at": expires_at.isoformat()}
        )  # fmt: skip
        agents = [api.RoomAgentDispatch(agent_name=agent_id)]
        await livekit["api"].room.create_room(
            api.CreateRoomRequest(
                name=room_name, empty_timeout=EMPTY_TIMEOUT_S, metadata=metadata, agents=agents
            )
        )
        token = (
            api.AccessToken()
            .with_identity(user_id)
            .with_grants(api.VideoGrants(room_join=True, room=room_name))
            .with_room_config(api.RoomConfiguration(agents=agents))
            .with_ttl(timedelta(hours=hours))
            .to_jwt()
        )
        created = {
            "session_id": session_id,
            "room_name": room_name,
            "token": token,
            "livekit_url": PUBLIC_LIVEKIT_URL,
            "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        }
        return JSONResponse(created, 201)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/voice/session", create_session, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
