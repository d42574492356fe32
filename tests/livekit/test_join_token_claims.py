"""The join token's claims are built as the SDK builds them (`Claims.asdict()`), only faster: the
same keys, the same values, for a bare grant and for one using every field the gateway can set
and some it does not (SIP grants, a kind), so an SDK upgrade that changes the shape shows here.
And they are signed as PyJWT signs them: the very same token."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest
from livekit import api
from livekit.api.access_token import Claims

from voice_gateway.livekit.join_tokens import HS256, claims_of, epoch_s

ROOM_CONFIG = api.RoomConfiguration(
    name="foundry_u1_pm-agent_sess_x",
    empty_timeout=120,
    departure_timeout=20,
    metadata='{"session_id":"sess_x"}',
    agents=[api.RoomAgentDispatch(agent_name="pm-agent", metadata='{"user_id":"u1"}')],
)


def bare() -> Claims:
    return api.AccessToken("key", "secret").with_grants(api.VideoGrants(room_join=True)).claims


def full() -> Claims:
    token = (
        api.AccessToken("key", "secret")
        .with_identity("u1")
        .with_name("Ada")
        .with_metadata('{"plan":"pro"}')
        .with_attributes({"tier": "gold", "empty": ""})
        .with_grants(api.VideoGrants(room_join=True, room="r", can_publish=False, hidden=False))
        .with_sip_grants(api.SIPGrants(admin=True))
        .with_kind("agent")
        .with_room_config(ROOM_CONFIG)
    )
    return token.claims


@pytest.mark.parametrize("claims", [bare(), full()], ids=["bare", "full"])
def test_the_claims_are_the_sdks(claims: Claims) -> None:
    assert claims_of(claims) == claims.asdict()


def test_empty_and_unset_values_are_left_out_but_false_is_kept() -> None:
    shown = claims_of(full())

    assert shown["video"]["canPublish"] is False
    assert shown["video"]["hidden"] is False
    assert "roomCreate" not in shown["video"]
    assert shown["attributes"] == {"tier": "gold", "empty": ""}
    assert shown["roomConfig"]["agents"] == [
        {"agentName": "pm-agent", "metadata": '{"user_id":"u1"}'}
    ]


@pytest.mark.parametrize("claims", [bare(), full()], ids=["bare", "full"])
def test_the_token_is_pyjwts_byte_for_byte(claims: Claims) -> None:
    secret = "a-secret-long-enough-for-hs256-0123456789"
    shown = {**claims_of(claims), "iss": "key", "sub": "u1", "nbf": 1, "exp": 2**31, "jti": "é"}

    assert HS256(secret).encode(shown) == jwt.encode(shown, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 1, 12, 0, 0, 999_999),  # naive: taken as UTC
        datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=5))),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before 1970: rounded down
        datetime(2600, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),  # past a float's microseconds
    ],
)
def test_nbf_and_exp_are_the_whole_seconds_the_sdk_gives(moment: datetime) -> None:
    assert epoch_s(moment) == calendar.timegm(moment.utctimetuple())
