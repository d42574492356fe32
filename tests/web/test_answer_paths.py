"""Every answer, whatever middleware or handler makes it, carries one X-Request-ID and, while the
gateway drains, Connection: close; a 500 is logged with its request id (review of 65e2d32)."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.livekit.test_call_outcomes import a_bug, nested_error_body
from tests.livekit.test_twirp_pool import livekit_like
from tests.support.gateway import SESSION_BODY, make_settings_for, serving
from voice_gateway.livekit import calls as calls_module
from voice_gateway.ops.drain import Drain
from voice_gateway.web.app import create_app


async def test_every_answer_has_one_request_id_and_closes_while_draining(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(calls_module, "_read", a_bug)  # the 500: a bug reading LiveKit's answer
    drain = Drain()
    async with livekit_like(nested_error_body) as (livekit_url, _):
        settings = make_settings_for(livekit_url, api_keys=["k" * 32])
        async with (
            serving(create_app(settings, drain)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            drain.start()
            refused = await client.post("/api/voice/session", json=SESSION_BODY)
            failed = await client.post(
                "/api/voice/session",
                json=SESSION_BODY,
                headers={"Authorization": "Bearer " + "k" * 32},
            )
            healthy = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})

    for response, status in ((refused, 401), (failed, 500), (healthy, 200)):
        assert response.status_code == status, response.text
        assert len(response.headers.get_list("x-request-id")) == 1, response.headers
        assert response.headers.get("connection") == "close", (status, response.headers)
    assert healthy.headers["x-request-id"] == "abc-123"
    assert failed.json()["request_id"] == failed.headers["x-request-id"]
    access = [r for r in caplog.records if r.name == "voice_gateway.access"]
    assert [getattr(r, "status", None) for r in access] == [401, 500, 200]
    assert getattr(access[1], "request_id", None) == failed.headers["x-request-id"]


async def test_of_two_offered_request_ids_the_first_is_the_requests(
    client: httpx.AsyncClient,
) -> None:
    headers = [("X-Request-ID", "first-id"), ("X-Request-ID", "second-id")]

    response = await client.get("/healthz", headers=headers)

    assert response.headers.get_list("x-request-id") == ["first-id"]
