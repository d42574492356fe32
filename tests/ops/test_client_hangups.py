"""A client that hangs up mid-body, over a real `voice-gateway serve`: one info line and a 499 in
the access log and metrics, never a 500 with a traceback; on the public webhook endpoint it
counts against the client address's limit like a bad signature."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import metric
from tests.support.processes import AUTH, Gateway, serving
from tests.support.raw_http import connect, request
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

HANG_UPS = 5
WEBHOOK_LIMIT = f"{HANG_UPS}/minute"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Gateway]:
    settings = {"VOICE_GATEWAY_RATE_LIMIT_ADDRESS": WEBHOOK_LIMIT}
    with serving(tmp_path_factory.mktemp("hangups"), standin, **settings) as gateway:
        yield gateway
        gateway.stop()


def hang_up_mid_body(port: int, path: str, request_id: str) -> None:
    headers = {"Content-Length": "100", "X-Request-ID": request_id, **AUTH}
    with connect(port) as sock:
        sock.sendall(request("POST", path, b'{"event":', headers))
        time.sleep(0.2)  # the app is reading the body when the client leaves


def lines_of(gateway: Gateway, request_id: str) -> list[dict[str, object]]:
    time.sleep(0.5)  # the log thread writes in batches
    return [line for line in gateway.log_lines() if line.get("request_id") == request_id]


def test_a_hang_up_mid_body_is_one_info_line_and_a_499(gateway: Gateway) -> None:
    hang_up_mid_body(gateway.port, "/api/voice/session", "hang-up-session")

    lines = lines_of(gateway, "hang-up-session")
    assert [line["status"] for line in lines if "status" in line] == [499]
    assert [line["level"] for line in lines] == ["info", "info"]  # its own line, the access line
    assert not any("exception" in line for line in lines)


async def test_hang_ups_on_the_webhook_count_against_the_address_limit(gateway: Gateway) -> None:
    for number in range(HANG_UPS):
        hang_up_mid_body(gateway.port, "/api/voice/webhook", f"hang-up-webhook-{number}")

    async with httpx.AsyncClient(base_url=gateway.base) as client:
        limited = await client.post("/api/voice/webhook", content=b"{}")
        failures = await metric(
            client,
            'voice_gateway_http_request_duration_seconds_count{method="POST",route="/api/voice/webhook",status="500"}',
        )
        hang_ups = await metric(
            client,
            'voice_gateway_http_request_duration_seconds_count{method="POST",route="/api/voice/webhook",status="499"}',
        )

    assert limited.status_code == 429
    assert (failures, hang_ups) == (0, HANG_UPS)
