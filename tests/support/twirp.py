"""Raw Twirp calls to the stand-in: the tokens and grants a caller of LiveKit's API presents.
The stand-in's own tests run with LiveKit's development key pair."""

from __future__ import annotations

import time
from typing import Any

import jwt

API_KEY = "devkey"
API_SECRET = "secret"
TWIRP = "/twirp/livekit.RoomService/"


def mint(video: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token as the SDK signs one (iss, nbf, exp, video); a claim given as None is left out."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": API_KEY, "nbf": now, "exp": now + 600, "video": video or {}}
    secret = claims.pop("secret", API_SECRET)
    sent = {name: value for name, value in (body | claims).items() if value is not None}
    return jwt.encode(sent, secret, algorithm="HS256")


def bearer(video: dict[str, Any] | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(video, **claims)}"}


CREATE = {"roomCreate": True}


LIST = {"roomList": True}


def admin(room: str) -> dict[str, Any]:
    return {"roomAdmin": True, "room": room}
