"""`doctor` on authentication: what is configured, and whether the JWKS and Redis answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import respx

from tests.support.identity_provider import jwks_settings
from tests.support.keys import SERVICE_KEY
from tests.support.redis_server import redis_server
from voice_gateway.doctor import run_checks
from voice_gateway.standin import StandIn


def sentences(results: list[tuple[bool, str]], passed: bool) -> str:
    return "\n".join(text for ok, text in results if ok is passed)


async def test_doctor_says_how_callers_authenticate(standin: StandIn, idp: respx.Router) -> None:
    results = await run_checks(jwks_settings(standin, api_keys=[SERVICE_KEY]))

    assert "1 service key(s) and end-user JWTs from https://idp.example.test/" in sentences(
        results, True
    )
    assert "JWKS lists 1 signing key(s)" in sentences(results, True)


async def test_doctor_explains_an_unreachable_jwks(standin: StandIn, idp: respx.Router) -> None:
    idp.routes["jwks"].mock(side_effect=httpx.ConnectError("refused"))

    results = await run_checks(jwks_settings(standin))

    assert "Fetching the JWKS from https://idp.example.test/" in sentences(results, False)


async def test_doctor_reaches_redis(standin: StandIn, idp: respx.Router, tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        results = await run_checks(jwks_settings(standin, redis_url=server.url))

    assert "Redis answers" in sentences(results, True)
