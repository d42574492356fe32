"""No secret and no minted token ever shows in logs, error bodies, doctor output or the OpenAPI
document: a full run is captured (DEBUG, every logger) and searched."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from tests.support.cli import clean_env, run_cli, running
from tests.support.gateway import SESSION_BODY, running_gateway
from tests.support.identity_provider import USER_SECRET, bearer, hs256_token, secret_settings
from tests.support.keys import API_SECRET, SERVICE_AUTH, SERVICE_KEY
from tests.support.processes import free_port
from voice_gateway.standin import StandIn

REDIS_PASSWORD = "redis-password-never-printed-8c1f"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{10,}")
SESSION = "/api/voice/session"


def redis_url() -> str:
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there


def assert_clean(text: str, tokens: list[str]) -> None:
    for secret in (API_SECRET, SERVICE_KEY, USER_SECRET, REDIS_PASSWORD, *tokens):
        assert secret not in text
    assert not JWT_SHAPE.search(text), JWT_SHAPE.search(text)


async def full_run(client: httpx.AsyncClient, standin: StandIn) -> tuple[list[str], list[str]]:
    """Everything a day might bring; returns the tokens minted or sent, and every error body."""
    user = bearer(hs256_token("nate"))
    sent = [hs256_token("nate"), hs256_token("nate", exp=1), hs256_token("x", secret="w" * 40)]
    ok = [
        await client.post(SESSION, json=SESSION_BODY | {"user_id": "zoe"}, headers=SERVICE_AUTH),
        await client.post(SESSION, json={"agent_id": "pm-agent"}, headers=user),
    ]
    room = ok[0].json()["room_name"]
    errors = [
        await client.get(f"{SESSION}/{room}", headers=user),  # 403: nate reading zoe's session
        await client.post(SESSION, json=SESSION_BODY | {"user_id": "zoe"}, headers=user),
        await client.post(SESSION, content=b"{not json", headers=SERVICE_AUTH),
        await client.post(SESSION, json={"user_id": ""}, headers=SERVICE_AUTH),
        await client.post(SESSION, json=SESSION_BODY),
        await client.post(SESSION, json=SESSION_BODY, headers={"Authorization": "Bearer guess"}),
        *[await client.post(SESSION, json=SESSION_BODY, headers=bearer(t)) for t in sent[1:]],
        await client.post(SESSION, content=b" " * 70_000, headers=SERVICE_AUTH),
    ]
    await client.get(f"{SESSION}/{room}", headers=SERVICE_AUTH)
    await client.delete(f"{SESSION}/{room}", headers=SERVICE_AUTH)
    standin.refuse_connections()
    errors.append(await client.post(SESSION, json=SESSION_BODY, headers=SERVICE_AUTH))
    errors.append(await client.get("/readyz"))
    standin.accept_connections()
    tokens = sent + [response.json()["token"] for response in ok]
    assert [r.status_code for r in ok] == [201, 201]
    return tokens, [response.text + str(response.headers) for response in errors]


async def test_a_full_run_leaks_no_secret_into_logs_or_error_bodies(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    settings = secret_settings(standin, api_keys=[SERVICE_KEY], redis_url=redis_url())
    with caplog.at_level(logging.DEBUG):
        async with running_gateway(settings) as client:
            tokens, error_bodies = await full_run(client, standin)
            document = (await client.get("/openapi.json")).text

    assert "rate-limit store failed" in caplog.text  # the Redis path was exercised
    assert "refused POST /api/voice/session" in caplog.text  # and the auth failures logged
    assert_clean(caplog.text, tokens)
    for body in error_bodies:
        assert_clean(body, tokens)
    assert_clean(document, tokens)


def secret_env(standin: StandIn, **extra: str) -> dict[str, str]:
    return clean_env(
        LIVEKIT_URL=standin.url,
        LIVEKIT_API_KEY="test-key",
        LIVEKIT_API_SECRET=API_SECRET,
        VOICE_GATEWAY_API_KEYS=SERVICE_KEY,
        VOICE_GATEWAY_JWT_SECRET=USER_SECRET,
        VOICE_GATEWAY_JWT_ISSUER="https://idp.example.test/",
        VOICE_GATEWAY_JWT_AUDIENCE="voice-gateway-tests",
        VOICE_GATEWAY_REDIS_URL=redis_url(),
        **extra,
    )


@pytest.mark.slow
def test_doctor_and_refusals_print_no_secret(tmp_path: Path, standin: StandIn) -> None:
    doctor = run_cli("doctor", env=secret_env(standin), cwd=tmp_path)
    refused = run_cli(
        "serve", env=secret_env(standin, VOICE_GATEWAY_JWT_JWKS_URL="https://idp/"), cwd=tmp_path
    )

    assert "Redis (VOICE_GATEWAY_REDIS_URL) does not answer" in doctor.stdout
    assert "not both" in refused.stderr
    assert_clean(doctor.stdout + doctor.stderr + refused.stdout + refused.stderr, [])


@pytest.mark.slow
def test_a_served_run_logs_no_secret(tmp_path: Path, standin: StandIn) -> None:
    port, output = free_port(), list[str]()
    serve = ("serve", "--host", "127.0.0.1", "--port", str(port))
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    with running(*serve, env=secret_env(standin), cwd=tmp_path, port=port, output=output) as base:
        created = httpx.post(
            f"{base}{SESSION}", json=SESSION_BODY, headers=SERVICE_AUTH, timeout=10
        )
        httpx.post(f"{base}{SESSION}", json=SESSION_BODY, headers=bearer(forged), timeout=10)
        user_token = hs256_token("nate")
        httpx.post(f"{base}{SESSION}", json={}, headers=bearer(user_token), timeout=10)

    assert "POST /api/voice/session" in output[0]  # uvicorn's access log was captured
    assert_clean(output[0], [created.json()["token"], user_token, forged])
