"""The API-key middleware and the grant checks: what the server answers for each token."""

from __future__ import annotations

import time

import httpx
import pytest
from livekit.api import CreateRoomRequest, ListParticipantsRequest, LiveKitAPI, ServerError

from tests.support.twirp import CREATE, LIST, TWIRP, admin, bearer, mint
from voice_gateway.standin import StandIn

LIST_ROOMS = f"{TWIRP}ListRooms"


async def test_no_token_fails_the_grant_check_with_permissions_denied(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(LIST_ROOMS, json={})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": "unauthenticated", "msg": "permissions denied"}


async def test_token_without_the_needed_grant_is_permissions_denied(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers=bearer(CREATE))

    assert (response.status_code, response.json()["msg"]) == (401, "permissions denied")


async def test_wrong_secret_is_a_plain_401_the_sdk_reports_as_unknown(standin: StandIn) -> None:
    lk = LiveKitAPI(standin.url, "devkey", "not-the-secret")
    try:
        with pytest.raises(ServerError) as caught:
            await lk.room.create_room(CreateRoomRequest(name="r1"))
    finally:
        await lk.aclose()

    assert (caught.value.status, caught.value.code) == (401, "unknown")
    assert not standin.has_room("r1")


async def test_wrong_secret_body_names_the_error_but_never_the_token(
    http: httpx.AsyncClient,
) -> None:
    token = mint(LIST, secret="not-the-secret")

    response = await http.post(LIST_ROOMS, json={}, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == (
        "invalid token: <redacted>, error: token signature is invalid: signature is invalid"
    )
    assert token not in response.text


async def test_unknown_api_key_is_named(http: httpx.AsyncClient) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers=bearer(LIST, iss="otherkey"))

    assert (response.status_code, response.text) == (401, "invalid API key: otherkey")


async def test_token_expired_beyond_the_leeway_is_refused(http: httpx.AsyncClient) -> None:
    expired = int(time.time()) - 125

    response = await http.post(LIST_ROOMS, json={}, headers=bearer(LIST, exp=expired))

    assert response.status_code == 401
    assert response.text.startswith(
        "invalid token: <redacted>, error: token has invalid claims: token is expired by 2m"
    )


async def test_token_expired_within_the_leeway_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers=bearer(LIST, exp=int(time.time()) - 30))

    assert response.status_code == 200


async def test_token_not_valid_yet_beyond_the_leeway_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        LIST_ROOMS, json={}, headers=bearer(LIST, nbf=int(time.time()) + 120)
    )

    assert response.status_code == 401
    assert response.text.endswith("token has invalid claims: token is not valid yet")


async def test_token_without_exp_is_accepted_as_released_servers_do(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers=bearer(LIST, exp=None))

    assert response.status_code == 200


async def test_authorization_without_bearer_prefix_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers={"Authorization": mint(LIST)})

    assert (response.status_code, response.text) == (
        401,
        "invalid authorization header. Must start with Bearer ",
    )


async def test_garbage_token_is_an_invalid_authorization_token(http: httpx.AsyncClient) -> None:
    response = await http.post(LIST_ROOMS, json={}, headers={"Authorization": "Bearer abc"})

    assert (response.status_code, response.text) == (401, "invalid authorization token")


async def test_token_in_the_access_token_query_parameter_is_used(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(LIST_ROOMS, json={}, params={"access_token": mint(LIST)})

    assert response.status_code == 200


async def test_bad_token_is_refused_on_the_health_path_too(http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"Authorization": "Bearer abc"})

    assert response.status_code == 401


async def test_admin_grant_for_another_room_is_permissions_denied(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        f"{TWIRP}ListParticipants", json={"room": "r1"}, headers=bearer(admin("r2"))
    )

    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


async def test_admin_grant_for_the_room_is_enough(lk: LiveKitAPI) -> None:
    listed = await lk.room.list_participants(ListParticipantsRequest(room="r1"))

    assert list(listed.participants) == []


async def test_oversized_metadata_update_is_refused_before_the_grant_check(
    http: httpx.AsyncClient,
) -> None:
    body = {"room": "r1", "metadata": "m" * 524_289}

    response = await http.post(f"{TWIRP}UpdateRoomMetadata", json=body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_argument")


async def test_oversized_create_is_refused_by_the_grant_check_first(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(f"{TWIRP}CreateRoom", json={"name": "x" * 300})

    assert response.status_code == 401


async def test_the_calls_record_the_grants_they_carried(lk: LiveKitAPI, standin: StandIn) -> None:
    await lk.room.create_room(CreateRoomRequest(name="r1"))

    [call] = standin.requests("CreateRoom")

    assert call.grants is not None
    assert call.grants.allows("roomCreate")
    assert (call.status, call.code) == (200, None)
