"""The address rate limits count: the TCP peer, and X-Forwarded-For only from trusted proxies.

Runs the gateway as `serve` does (uvicorn with `ops.server.server_config`), since the server,
not the app, decides what the ASGI client address is.
"""

from __future__ import annotations

import httpx

from tests.support.gateway import make_settings
from tests.support.keys import SERVICE_KEY
from tests.support.live_gateway import live_gateway
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

MISSING_ROOM = "/api/voice/session/foundry_nobody"


def refusals(settings: Settings, forwarded_for: list[str]) -> list[int]:
    with live_gateway(settings) as (host, port), httpx.Client(timeout=10) as client:
        return [
            client.get(
                f"http://{host}:{port}{MISSING_ROOM}",
                headers={"Authorization": "Bearer guess", "X-Forwarded-For": address},
            ).status_code
            for address in forwarded_for
        ]


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(standin: StandIn) -> None:
    settings = make_settings(standin, api_keys=[SERVICE_KEY], rate_limit_address="2/minute")

    assert refusals(settings, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [401, 401, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(standin: StandIn) -> None:
    settings = make_settings(
        standin,
        api_keys=[SERVICE_KEY],
        rate_limit_address="2/minute",
        trusted_proxies="127.0.0.1",
    )

    assert refusals(settings, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"]) == [401] * 4
