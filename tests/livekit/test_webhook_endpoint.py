"""POST /api/voice/webhook: LiveKit's signed events are verified, logged with the session id and
counted; unsigned, tampered and stale ones get 401 and are not processed."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from tests.support.gateway import create_session, make_settings, metric, serving_gateway
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from tests.support.polling import wait_until
from tests.support.webhooks import WEBHOOK, event_body, signed
from voice_gateway.standin import StandIn

TOKEN_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(WEBHOOK, content=body, headers=headers)


async def test_a_signed_event_is_accepted(client: httpx.AsyncClient) -> None:
    body = event_body()

    response = await post(client, body, signed(body))

    assert response.status_code == 200
    assert response.json() == {"event": "room_started", "session_id": None}


async def test_an_event_for_a_session_room_names_the_session(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    created = (await create_session(client)).json()
    room = standin.get_room(created["room_name"])
    body = event_body(room=room.name, metadata=room.metadata)

    response = await post(client, body, signed(body))

    assert response.json()["session_id"] == created["session_id"]


async def test_accepted_events_are_counted_by_type(client: httpx.AsyncClient) -> None:
    for event in ("room_started", "participant_joined", "participant_joined", "novel_event"):
        body = event_body(event)
        await post(client, body, signed(body))

    count = 'voice_gateway_webhook_events_total{event="participant_joined"}'
    assert await metric(client, count) == 2
    assert await metric(client, 'voice_gateway_webhook_events_total{event="other"}') == 1


async def test_accepted_events_are_logged_with_the_session_id(
    client: httpx.AsyncClient, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    created = (await create_session(client)).json()
    room = standin.get_room(created["room_name"])
    body = event_body("participant_joined", room.name, room.metadata)

    with caplog.at_level(logging.INFO, logger="voice_gateway.webhooks"):
        await post(client, body, signed(body))

    (message,) = [r.getMessage() for r in caplog.records if r.name == "voice_gateway.webhooks"]
    assert "participant_joined" in message
    assert created["session_id"] in message


async def test_a_bearer_prefix_is_tolerated(client: httpx.AsyncClient) -> None:
    body = event_body()
    headers = signed(body)
    headers["Authorization"] = "Bearer " + headers["Authorization"]

    assert (await post(client, body, headers)).status_code == 200


def _forged(body: bytes) -> dict[str, dict[str, str]]:
    now = time.time()
    return {
        "unsigned": {"Content-Type": "application/webhook+json"},
        "tampered": signed(event_body(room="another-room")),
        "stale": signed(body, now=now - 6 * 60),
        "not yet valid": signed(body, now=now + 5 * 60),
        "another secret": signed(body, api_secret="another-secret-of-enough-length-0123456789"),
        "another key": signed(body, api_key="another-key"),
        "not a jwt": {"Authorization": "not-a-jwt"},
    }


@pytest.mark.parametrize("case", list(_forged(b"")))
async def test_unverifiable_webhooks_get_401_and_are_not_processed(
    client: httpx.AsyncClient, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = event_body()

    with caplog.at_level(logging.INFO, logger="voice_gateway.webhooks"):
        response = await post(client, body, _forged(body)[case])

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert "www-authenticate" in response.headers
    assert await metric(client, "voice_gateway_webhook_events_total{") == 0
    assert not [r for r in caplog.records if r.name == "voice_gateway.webhooks"]


@pytest.mark.parametrize(
    ("case", "reason"), [("unsigned", "unsigned"), ("tampered", "invalid"), ("stale", "stale")]
)
async def test_rejections_are_counted_by_reason(
    client: httpx.AsyncClient, case: str, reason: str
) -> None:
    body = event_body()
    await post(client, body, _forged(body)[case])

    rejected = f'voice_gateway_webhooks_rejected_total{{reason="{reason}"}}'
    assert await metric(client, rejected) == 1


async def test_a_signature_expired_less_than_a_minute_ago_is_within_leeway(
    client: httpx.AsyncClient,
) -> None:
    body = event_body()

    response = await post(client, body, signed(body, now=time.time() - 5 * 60 - 30))

    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
async def test_a_signed_body_that_is_not_an_event_is_a_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await post(client, body, signed(body))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


async def test_the_signature_never_appears_in_the_answer(client: httpx.AsyncClient) -> None:
    body = event_body()
    headers = signed(event_body(room="another-room"))

    response = await post(client, body, headers)

    assert headers["Authorization"] not in response.text


# -- the whole path: LiveKit (the stand-in) sends, the gateway receives ------------------------


@pytest.mark.usefixtures("webhooks_off_afterwards")
async def test_a_sessions_life_reaches_the_gateway_as_verified_webhooks(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(standin.webhook_deliveries())
    with caplog.at_level(logging.INFO, logger="voice_gateway.webhooks"):
        # Callers need a service key; LiveKit's webhooks need only their signature.
        async with serving_gateway(make_settings(standin, api_keys=[SERVICE_KEY])) as url:
            standin.set_webhook_urls([f"{url}{WEBHOOK}"])
            async with httpx.AsyncClient(base_url=url, headers=SERVICE_AUTH) as client:
                created = (await create_session(client)).json()
                standin.join(created["token"])
                standin.remove_participant(created["room_name"], "nate")
                await client.delete(f"/api/voice/session/{created['room_name']}")
                await wait_until(lambda: len(standin.webhook_deliveries()) >= before + 5)
                metrics = (await client.get("/metrics")).text

    delivered = standin.webhook_deliveries()[before:]
    assert [(d.event, d.status) for d in delivered] == [
        ("room_started", 200),
        ("participant_joined", 200),
        ("participant_left", 200),
        ("room_started", 200),  # DELETE's end mark (sessions/endings.py), a room of its own
        ("room_finished", 200),
    ]
    assert 'voice_gateway_webhook_events_total{event="room_started"} 2.0' in metrics
    for event in ("participant_joined", "participant_left", "room_finished"):
        assert f'voice_gateway_webhook_events_total{{event="{event}"}} 1.0' in metrics
    logged = [r.getMessage() for r in caplog.records if r.name == "voice_gateway.webhooks"]
    assert len(logged) == 5
    assert all(created["session_id"] in message for message in logged)
