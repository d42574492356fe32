"""Authentication and abuse-limit settings: incoherent ones stop start-up, naming the variable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.gateway import make_settings
from tests.support.identity_provider import AUDIENCE, ISSUER, JWKS_URL, USER_SECRET
from tests.support.keys import API_SECRET, SERVICE_KEY
from voice_gateway.doctor import settings_problems
from voice_gateway.settings import describe_settings_error
from voice_gateway.standin import StandIn


def refusal(standin: StandIn, **overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make_settings(standin, **overrides)
    return describe_settings_error(caught.value)


def test_a_jwks_url_without_issuer_and_audience_is_refused(standin: StandIn) -> None:
    line = refusal(standin, jwt_jwks_url=JWKS_URL)

    assert "VOICE_GATEWAY_JWT_ISSUER and VOICE_GATEWAY_JWT_AUDIENCE must be set" in line


def test_a_jwks_url_and_a_secret_together_are_refused(standin: StandIn) -> None:
    line = refusal(
        standin,
        jwt_jwks_url=JWKS_URL,
        jwt_secret=USER_SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )

    assert "not both" in line
    assert USER_SECRET not in line


def test_an_issuer_without_a_key_source_is_refused(standin: StandIn) -> None:
    assert "is needed to verify end-user tokens" in refusal(standin, jwt_issuer=ISSUER)


@pytest.mark.parametrize(
    ("source", "algorithms"),
    [
        ({"jwt_jwks_url": JWKS_URL}, "HS256"),
        ({"jwt_jwks_url": JWKS_URL}, "none"),
        ({"jwt_secret": USER_SECRET}, "RS256"),
        ({"jwt_secret": USER_SECRET}, "none"),
    ],
)
def test_algorithms_that_do_not_fit_the_key_source_are_refused(
    standin: StandIn, source: dict[str, str], algorithms: str
) -> None:
    line = refusal(
        standin, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_algorithms=algorithms, **source
    )

    assert "VOICE_GATEWAY_JWT_ALGORITHMS" in line


def test_default_algorithms_follow_the_key_source(standin: StandIn) -> None:
    claims = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}

    assert make_settings(standin, jwt_jwks_url=JWKS_URL, **claims).end_user_algorithms == ["RS256"]
    assert make_settings(standin, jwt_secret=USER_SECRET, **claims).end_user_algorithms == ["HS256"]


def test_a_malformed_hashed_key_is_refused_without_echoing_it(standin: StandIn) -> None:
    line = refusal(standin, api_keys=f"{SERVICE_KEY},sha256:abc")

    assert "VOICE_GATEWAY_API_KEYS" in line
    assert "entry 2" in line
    assert SERVICE_KEY not in line


@pytest.mark.parametrize("field", ["rate_limit_user", "rate_limit_address", "rate_limit_service"])
def test_a_rate_that_does_not_parse_is_refused(standin: StandIn, field: str) -> None:
    line = refusal(standin, **{field: "lots"})

    assert f"VOICE_GATEWAY_{field.upper()} is invalid" in line


def test_a_redis_url_must_be_redis(standin: StandIn) -> None:
    line = refusal(standin, redis_url="http://user:hunter2@cache:6379")

    assert "VOICE_GATEWAY_REDIS_URL" in line
    assert "hunter2" not in line


def test_empty_optional_values_mean_unset(standin: StandIn) -> None:
    settings = make_settings(standin, jwt_issuer="", jwt_jwks_url="", redis_url="")

    assert settings.redis_url is None
    assert not settings.authentication_configured


def test_production_needs_authentication(standin: StandIn) -> None:
    problems = settings_problems(make_settings(standin))

    assert any("No caller authentication is configured" in p for p in problems)
    assert settings_problems(make_settings(standin, api_keys=SERVICE_KEY)) == []


def test_production_refuses_a_short_user_token_secret(standin: StandIn) -> None:
    settings = make_settings(standin, jwt_secret="short", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)

    assert any("VOICE_GATEWAY_JWT_SECRET is shorter" in p for p in settings_problems(settings))
    assert settings_problems(settings, dev=True) == []


def test_production_refuses_the_livekit_secret_as_user_token_secret(standin: StandIn) -> None:
    settings = make_settings(
        standin, jwt_secret=API_SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )

    assert "VOICE_GATEWAY_JWT_SECRET must not be the LiveKit secret." in settings_problems(settings)


def test_a_key_no_bearer_header_could_carry_is_refused(standin: StandIn) -> None:
    line = refusal(standin, api_keys=f"{SERVICE_KEY},key with spaces!")

    assert "entry 2 has characters a Bearer header cannot carry" in line
