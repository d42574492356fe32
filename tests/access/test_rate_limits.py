"""Rate limits: per end user and per address, services unlimited unless capped, shared via Redis."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.support.gateway import make_settings, metric, running_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.keys import API_SECRET, SERVICE_AUTH, SERVICE_KEY
from tests.support.problems import assert_problem
from tests.support.processes import free_port
from tests.support.webhooks import WEBHOOK, event_body, signed
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

MISSING_ROOM = "/api/voice/session/foundry_nobody"  # authenticated requests answer 404, cheaply


def limited(standin: StandIn, **overrides: object) -> Settings:
    return secret_settings(standin, api_keys=[SERVICE_KEY], **overrides)


async def statuses(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[int]:
    return [(await client.get(MISSING_ROOM, headers=headers)).status_code for _ in range(count)]


async def test_an_end_user_over_its_limit_gets_429_with_retry_after(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_user="3/minute")) as client:
        answers = await statuses(client, bearer(hs256_token("nate")), 3)
        refused = await client.get(MISSING_ROOM, headers=bearer(hs256_token("nate")))

    assert answers == [404] * 3
    assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_users_are_limited_separately(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_user="2/minute")) as client:
        await statuses(client, bearer(hs256_token("nate")), 2)
        zoe = await client.get(MISSING_ROOM, headers=bearer(hs256_token("zoe")))

    assert zoe.status_code == 404


async def test_end_users_share_their_addresses_limit(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="2/minute")) as client:
        await statuses(client, bearer(hs256_token("nate")), 2)
        zoe = await client.get(MISSING_ROOM, headers=bearer(hs256_token("zoe")))

    assert_problem(zoe, 429, "rate_limited")


async def test_refused_credentials_count_against_the_address(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="3/minute")) as client:
        guesses = await statuses(client, {"Authorization": "Bearer guess"}, 4)

    assert guesses == [401, 401, 401, 429]


async def webhook_statuses(client: httpx.AsyncClient, secret: str, count: int) -> list[int]:
    body = event_body()  # once: its created_at is the second it is made, and the hash covers it
    headers = signed(body, api_secret=secret)
    return [
        (await client.post(WEBHOOK, content=body, headers=headers)).status_code
        for _ in range(count)
    ]


async def test_webhooks_failing_verification_count_against_the_address(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="3/minute")) as client:
        forged = await webhook_statuses(client, "not-the-livekit-secret", 4)

    assert forged == [401, 401, 401, 429]


async def test_an_address_over_its_limit_gets_429_before_its_webhook_is_verified(
    standin: StandIn,
) -> None:
    rejected = "voice_gateway_webhooks_rejected_total"
    async with running_gateway(limited(standin, rate_limit_address="2/minute")) as client:
        await webhook_statuses(client, "not-the-livekit-secret", 2)
        verified_before = await metric(client, rejected)
        flood = await webhook_statuses(client, "not-the-livekit-secret", 5)
        verified_after = await metric(client, rejected)

    assert flood == [429] * 5
    assert verified_after == verified_before  # no verification was spent on the flood


async def test_valid_webhooks_are_never_limited_nor_counted(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="2/minute")) as client:
        accepted = await webhook_statuses(client, API_SECRET, 6)
        guess = await client.get(MISSING_ROOM, headers={"Authorization": "Bearer guess"})

    assert accepted == [200] * 6
    assert guess.status_code == 401  # the address's budget is untouched by valid webhooks


async def test_a_forwarded_for_header_does_not_change_the_address(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="2/minute")) as client:
        answers = [
            (await client.get(MISSING_ROOM, headers={"X-Forwarded-For": f"10.0.0.{n}"})).status_code
            for n in range(3)
        ]

    assert answers == [401, 401, 429]


async def test_service_keys_are_unlimited_by_default(standin: StandIn) -> None:
    settings = limited(standin, rate_limit_address="2/minute", rate_limit_user="2/minute")
    async with running_gateway(settings) as client:
        answers = await statuses(client, SERVICE_AUTH, 20)

    assert answers == [404] * 20


async def test_a_setting_caps_service_keys(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_service="2/minute")) as client:
        answers = await statuses(client, SERVICE_AUTH, 3)

    assert answers == [404, 404, 429]


async def test_probes_are_never_rate_limited(standin: StandIn) -> None:
    async with running_gateway(limited(standin, rate_limit_address="1/minute")) as client:
        await statuses(client, {"Authorization": "Bearer guess"}, 2)
        probes = [(await client.get("/healthz")).status_code for _ in range(5)]

    assert probes == [200] * 5


async def test_defaults_allow_a_browsers_prefetch_and_refetch_for_several_sessions(
    standin: StandIn,
) -> None:
    # A page load prefetches, every session end refetches: two calls per session, five sessions.
    async with running_gateway(secret_settings(standin)) as client:
        calls = [
            await client.post(
                "/api/voice/session",
                json={"agent_id": "pm-agent"},
                headers=bearer(hs256_token("nate")),
            )
            for _ in range(10)
        ]

    assert [call.status_code for call in calls] == [201] * 10


def test_default_limits_are_per_minute_and_services_unlimited(standin: StandIn) -> None:
    settings = make_settings(standin)

    assert (settings.rate_limit_user, settings.rate_limit_address) == ("30/minute", "120/minute")
    assert settings.rate_limit_service == ""


async def test_replicas_share_counters_through_redis(standin: StandIn, redis_url: str) -> None:
    settings = limited(standin, redis_url=redis_url, rate_limit_user="3/minute")
    token = bearer(hs256_token("redis-user"))
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        answers = [
            (await replica.get(MISSING_ROOM, headers=token)).status_code
            for replica in (first, second, first, second)
        ]

    assert answers == [404, 404, 404, 429]


async def test_an_unreachable_redis_lets_requests_through_and_says_so_once(
    standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    settings = limited(standin, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="voice_gateway.rate_limits"):
        async with running_gateway(settings) as client:
            answers = await statuses(client, bearer(hs256_token("nate")), 5)

    assert answers == [404] * 5
    assert caplog.text.count("rate-limit store failed") == 1
