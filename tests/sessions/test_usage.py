"""GET /api/voice/usage: each cap in the caller's scope, its limit and its live count."""

from __future__ import annotations

from tests.support.caps import USAGE, own_prefix
from tests.support.gateway import running_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

NATE = bearer(hs256_token("nate"))


def caps(standin: StandIn) -> Settings:
    return secret_settings(
        standin,
        api_keys=[SERVICE_KEY],
        room_prefix=own_prefix(),
        max_sessions=10,
        max_sessions_per_agent=5,
        max_sessions_per_user=2,
    )


async def test_an_end_user_sees_its_own_cap_and_the_gateways(standin: StandIn) -> None:
    async with running_gateway(caps(standin)) as client:
        await client.post("/api/voice/session", json={"agent_id": "pm-agent"}, headers=NATE)
        body = {"user_id": "zoe", "agent_id": "pm-agent"}
        await client.post("/api/voice/session", json=body, headers=SERVICE_AUTH)
        usage = await client.get(USAGE, headers=NATE)

    assert usage.json() == {
        "gateway": {"limit": 10, "count": 2},
        "user": {"limit": 2, "user_id": "nate", "count": 1},
        "agent": None,
    }


async def test_a_service_key_sees_every_agents_count_and_the_per_user_limit(
    standin: StandIn,
) -> None:
    async with running_gateway(caps(standin)) as client:
        for user, agent in (("zoe", "pm-agent"), ("ada", "pm-agent"), ("zoe", "support")):
            body = {"user_id": user, "agent_id": agent}
            await client.post("/api/voice/session", json=body, headers=SERVICE_AUTH)
        await client.post(
            "/api/voice/token", json={"participant_identity": "ada"}, headers=SERVICE_AUTH
        )
        usage = await client.get(USAGE, headers=SERVICE_AUTH)

    assert usage.json() == {
        "gateway": {"limit": 10, "count": 4},  # the token's session dispatches no agent
        "user": {"limit": 2, "user_id": None, "count": None},
        "agent": {"limit": 5, "counts": {"pm-agent": 2, "support": 1}},
    }


async def test_without_caps_usage_reports_no_limits(standin: StandIn) -> None:
    settings = secret_settings(standin, api_keys=[SERVICE_KEY], room_prefix=own_prefix())
    async with running_gateway(settings) as client:
        usage = (await client.get(USAGE, headers=NATE)).json()

    assert usage["gateway"] == {"limit": None, "count": 0}
    assert usage["user"]["limit"] is None


async def test_usage_needs_credentials(standin: StandIn) -> None:
    async with running_gateway(caps(standin)) as client:
        response = await client.get(USAGE)

    assert response.status_code == 401
