"""The LiveKit backend a test runs against: the stand-in or the real `livekit-server`. Tests that
take `backend` run on both; where the two disagree, the real server is right."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.livekit_backend import Backend
from tests.support.livekit_server import livekit_server
from tests.support.processes import free_port
from voice_gateway.standin import StandIn

WEBHOOK_PATH = "/api/voice/webhook"


@pytest.fixture(params=["standin", "livekit-server"])
def backend(request: pytest.FixtureRequest, standin: StandIn, tmp_path: Path) -> Iterator[Backend]:
    # The gateway under test listens here when it serves, so LiveKit's webhooks reach it.
    gateway_port = free_port()
    webhook_url = f"http://127.0.0.1:{gateway_port}{WEBHOOK_PATH}"
    if request.param == "standin":
        standin.set_webhook_urls([webhook_url])
        yield Backend("standin", standin.url, gateway_port)
        standin.set_webhook_urls([])
        return
    with livekit_server(tmp_path, webhook_urls=[webhook_url]) as server:
        yield Backend("livekit-server", server.url, gateway_port)
