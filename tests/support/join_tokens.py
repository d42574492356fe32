"""What a join token from the token endpoint says: its claims and the session record it carries."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt

from tests.support.keys import API_KEY, API_SECRET

TOKEN = "/api/voice/token"


def claims_of(response: httpx.Response) -> dict[str, Any]:
    token = response.json()["participant_token"]
    return jwt.decode(token, API_SECRET, algorithms=["HS256"], issuer=API_KEY)


def record_in(claims: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = json.loads(claims["roomConfig"]["metadata"])
    return metadata
