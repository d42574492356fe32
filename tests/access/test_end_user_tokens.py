"""End-user JWTs from an identity provider's JWKS (faked with respx), and from a shared secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization

from tests.support.gateway import running_gateway
from tests.support.identity_provider import (
    USER_SECRET,
    bearer,
    claims_for,
    hs256_token,
    jwks,
    jwks_settings,
    rs256_token,
    secret_settings,
    signing_key,
)
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from tests.support.problems import assert_problem
from voice_gateway.standin import StandIn

SESSION = "/api/voice/session"
AGENT = {"agent_id": "pm-agent"}


@pytest.fixture
async def gateway(standin: StandIn, idp: respx.Router) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(jwks_settings(standin)) as client:
        yield client


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


async def refusal_reason(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post(SESSION, json=AGENT, headers=bearer(token))
    assert_problem(response, 401, "unauthenticated")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return str(response.json()["detail"])


async def test_a_valid_user_token_creates_a_session_as_its_subject(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post(
        SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
    )

    assert response.status_code == 201
    assert response.json()["room_name"].startswith("foundry_nate_pm-agent_")


async def test_an_expired_token_is_refused(gateway: httpx.AsyncClient) -> None:
    token = rs256_token("nate", signing_key("k1"), exp=int(claims_for("x")["iat"]) - 120)

    assert "expired" in await refusal_reason(gateway, token)


async def test_a_token_for_another_audience_is_refused(gateway: httpx.AsyncClient) -> None:
    token = rs256_token("nate", signing_key("k1"), aud="some-other-app")

    assert "audience" in await refusal_reason(gateway, token)


async def test_a_token_from_another_issuer_is_refused(gateway: httpx.AsyncClient) -> None:
    token = rs256_token("nate", signing_key("k1"), iss="https://evil.example.test/")

    assert "issuer" in await refusal_reason(gateway, token)


@pytest.mark.parametrize("claim", ["exp", "sub", "aud", "iss"])
async def test_a_token_without_a_required_claim_is_refused(
    gateway: httpx.AsyncClient, claim: str
) -> None:
    claims = claims_for("nate")
    del claims[claim]
    key = signing_key("k1")
    token = jwt.encode(claims, key.private, "RS256", headers={"kid": key.kid})

    await refusal_reason(gateway, token)


async def test_an_unsigned_alg_none_token_is_refused(gateway: httpx.AsyncClient) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, claims_for("nate"))

    assert "algorithm" in await refusal_reason(gateway, token)


@pytest.mark.parametrize("form", ["pem", "jwk-json"])
async def test_hs256_signed_with_the_public_key_is_refused(
    gateway: httpx.AsyncClient, form: str
) -> None:
    public = signing_key("k1").private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = pem if form == "pem" else json.dumps(signing_key("k1").jwk()).encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    signing_input = unsigned(header, claims_for("nate"))[:-1]
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    assert "algorithm" in await refusal_reason(gateway, token)


async def test_a_tampered_payload_is_refused(gateway: httpx.AsyncClient) -> None:
    header, _, signature = rs256_token("nate", signing_key("k1")).split(".")
    forged = unsigned({}, claims_for("admin")).split(".")[1]

    assert "signature" in await refusal_reason(gateway, f"{header}.{forged}.{signature}")


async def test_a_token_signed_by_an_unlisted_key_is_refused(gateway: httpx.AsyncClient) -> None:
    token = rs256_token("nate", signing_key("rogue"))

    assert "key" in await refusal_reason(gateway, token)


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    standin: StandIn, idp: respx.Router
) -> None:
    async with running_gateway(jwks_settings(standin, jwt_jwks_refetch_interval_s=0)) as client:
        before = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
        )
        idp.routes["jwks"].mock(return_value=httpx.Response(200, json=jwks(signing_key("k2"))))
        after = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k2")))
        )

    assert (before.status_code, after.status_code) == (201, 201)
    assert idp.routes["jwks"].call_count == 2


async def test_known_keys_are_served_from_the_cache(
    gateway: httpx.AsyncClient, idp: respx.Router
) -> None:
    for _ in range(3):
        response = await gateway.get(
            "/api/voice/session/foundry_none",
            headers=bearer(rs256_token("nate", signing_key("k1"))),
        )
        assert response.status_code == 404

    assert idp.routes["jwks"].call_count == 1


async def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(
    gateway: httpx.AsyncClient, idp: respx.Router
) -> None:
    await gateway.get(
        "/api/voice/session/foundry_none", headers=bearer(rs256_token("nate", signing_key("k1")))
    )

    async def bogus(number: int) -> None:
        key = signing_key("k1")
        token = jwt.encode(
            claims_for("nate"), key.private, "RS256", headers={"kid": f"bogus-{number}"}
        )
        await refusal_reason(gateway, token)

    async with anyio.create_task_group() as group:
        for number in range(30):
            group.start_soon(bogus, number)

    # One fetch at the first token, at most one more for all thirty unknown kids.
    assert idp.routes["jwks"].call_count <= 2


async def test_an_unreachable_identity_provider_is_a_503_not_a_401(
    standin: StandIn, idp: respx.Router
) -> None:
    idp.routes["jwks"].mock(side_effect=httpx.ConnectError("refused"))
    async with running_gateway(jwks_settings(standin)) as client:
        response = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
        )

    assert_problem(response, 503, "identity_provider_unavailable")


async def test_a_hanging_identity_provider_costs_only_the_jwks_timeout(
    standin: StandIn, idp: respx.Router
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        return httpx.Response(200, json=jwks(signing_key("k1")))

    idp.routes["jwks"].mock(side_effect=hang)
    settings = jwks_settings(standin, jwt_jwks_timeout_s=0.2)
    async with running_gateway(settings) as client:
        with anyio.fail_after(10):
            response = await client.post(
                SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
            )

    assert_problem(response, 503, "identity_provider_unavailable")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"k": 1}),
        # Deeper than the JSON decoder's recursion allows: RecursionError, not ValueError.
        httpx.Response(200, text="[" * 100_000),
    ],
    ids=["500", "html", "no-keys", "nested-too-deep"],
)
async def test_a_broken_jwks_answer_is_a_503(
    standin: StandIn, idp: respx.Router, answer: httpx.Response
) -> None:
    idp.routes["jwks"].mock(return_value=answer)
    async with running_gateway(jwks_settings(standin)) as client:
        response = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
        )

    assert_problem(response, 503, "identity_provider_unavailable")


async def test_cached_keys_keep_working_while_the_identity_provider_is_down(
    standin: StandIn, idp: respx.Router
) -> None:
    async with running_gateway(jwks_settings(standin, jwt_jwks_refetch_interval_s=0)) as client:
        token = rs256_token("nate", signing_key("k1"))
        await client.get("/api/voice/session/foundry_none", headers=bearer(token))
        idp.routes["jwks"].mock(side_effect=httpx.ConnectError("refused"))
        unknown = rs256_token("nate", signing_key("k2"))
        refused = await client.get("/api/voice/session/foundry_none", headers=bearer(unknown))
        known = await client.get("/api/voice/session/foundry_none", headers=bearer(token))

    assert refused.status_code == 401
    assert known.status_code == 404  # authenticated; that room just does not exist


async def test_service_keys_and_user_tokens_work_side_by_side(
    standin: StandIn, idp: respx.Router
) -> None:
    async with running_gateway(jwks_settings(standin, api_keys=[SERVICE_KEY])) as client:
        service = await client.post(SESSION, json=AGENT | {"user_id": "zoe"}, headers=SERVICE_AUTH)
        user = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
        )

    assert (service.status_code, user.status_code) == (201, 201)


@pytest.mark.parametrize(
    ("api_keys", "reason"),
    [
        ([SERVICE_KEY], "the bearer credential is neither a valid service key nor a JWT"),
        ([], "the bearer token is not a JWT"),
    ],
)
async def test_a_credential_that_is_no_jwt_is_refused_for_what_it_could_have_been(
    standin: StandIn, idp: respx.Router, api_keys: list[str], reason: str
) -> None:
    # With service keys too, "not a JWT" alone sent the owner of a mistyped key astray.
    async with running_gateway(jwks_settings(standin, api_keys=api_keys)) as client:
        response = await client.post(SESSION, json=AGENT, headers=bearer("vgk_mistyped-key"))

    assert_problem(response, 401, "unauthenticated")
    assert response.json()["detail"] == reason[0].upper() + reason[1:]
    assert f'error_description="{reason}"' in response.headers["www-authenticate"]


async def test_a_shared_secret_verifies_hs256_user_tokens(standin: StandIn) -> None:
    async with running_gateway(secret_settings(standin)) as client:
        good = await client.post(SESSION, json=AGENT, headers=bearer(hs256_token("nate")))
        forged = await client.post(
            SESSION, json=AGENT, headers=bearer(hs256_token("nate", secret="x" * 40))
        )

    assert good.status_code == 201
    assert_problem(forged, 401, "unauthenticated")


async def test_a_shared_secret_refuses_rs256_tokens(standin: StandIn) -> None:
    async with running_gateway(secret_settings(standin)) as client:
        response = await client.post(
            SESSION, json=AGENT, headers=bearer(rs256_token("nate", signing_key("k1")))
        )

    assert_problem(response, 401, "unauthenticated")
    assert USER_SECRET not in response.text
