"""POST /api/voice/session with an Idempotency-Key: the same caller, key and body get the same
session (and a fresh token) from any replica; the same key with another body gets a 422, and a
replay after the session was DELETEd a 409: ending a session is final."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
from pydantic import SecretStr

from tests.support.gateway import SESSION_BODY, create_session, make_settings, running_gateway
from tests.support.identity_provider import bearer, hs256_token, secret_settings
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from voice_gateway.sessions.idempotency import SessionIds
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

SESSION = "/api/voice/session"
_KEY_SUFFIX = {"": ""}


@pytest.fixture(autouse=True)
def _keys_of_this_test_only() -> None:
    # The stand-in, and the claim rooms in it, outlive a test: each test's keys are its own.
    _KEY_SUFFIX[""] = uuid.uuid4().hex


async def create(
    client: httpx.AsyncClient, key: str, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    """With `key` made unique to this test; bad keys are sent as they are."""
    usable = re.fullmatch(r"[a-z0-9-]+", key)
    all_headers = {"Idempotency-Key": f"{key}-{_KEY_SUFFIX['']}" if usable else key}
    return await client.post(
        SESSION, json=SESSION_BODY | fields, headers=all_headers | (headers or {})
    )


async def test_a_repeat_gets_the_same_session_and_room(client: httpx.AsyncClient) -> None:
    first = (await create(client, "order-1")).json()
    again = (await create(client, "order-1")).json()

    assert again["session_id"] == first["session_id"]
    assert again["room_name"] == first["room_name"]
    assert again["expires_at"] == first["expires_at"]


async def test_a_repeat_gets_a_fresh_token(client: httpx.AsyncClient) -> None:
    first = (await create(client, "order-1")).json()
    again = (await create(client, "order-1")).json()

    assert again["token"] != first["token"]


async def test_a_repeat_answers_201_like_the_first(client: httpx.AsyncClient) -> None:
    await create(client, "order-1")

    assert (await create(client, "order-1")).status_code == 201


@pytest.mark.parametrize(
    "changed",
    [{"session_duration_hours": 3}, {"agent_id": "sales-agent"}, {"user_id": "someone-else"}],
)
async def test_the_same_key_with_another_body_is_a_422(
    client: httpx.AsyncClient, changed: dict[str, Any]
) -> None:
    await create(client, "order-1")

    response = await create(client, "order-1", **changed)

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


async def test_a_refused_repeat_creates_no_room(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    await create(client, "order-1")
    rooms = set(standin.rooms)

    await create(client, "order-1", agent_id="sales-agent")

    assert set(standin.rooms) == rooms


async def test_different_keys_get_different_sessions(client: httpx.AsyncClient) -> None:
    first = (await create(client, "order-1")).json()
    second = (await create(client, "order-2")).json()

    assert first["session_id"] != second["session_id"]


async def test_the_same_key_from_different_end_users_gets_different_sessions(
    standin: StandIn,
) -> None:
    async with running_gateway(secret_settings(standin)) as client:
        # user_id null: each end user acts as its token's subject
        ada = await create(client, "order-1", bearer(hs256_token("ada")), user_id=None)
        bob = await create(client, "order-1", bearer(hs256_token("bob")), user_id=None)

    assert (ada.status_code, bob.status_code) == (201, 201)
    assert ada.json()["session_id"] != bob.json()["session_id"]


async def test_the_same_key_from_different_service_keys_gets_different_sessions(
    standin: StandIn,
) -> None:
    other_key = "another-service-key-0123456789abcdef"
    async with running_gateway(make_settings(standin, api_keys=[SERVICE_KEY, other_key])) as client:
        one = (await create(client, "order-1", headers=SERVICE_AUTH)).json()
        two = (await create(client, "order-1", headers=bearer(other_key))).json()

    assert one["session_id"] != two["session_id"]


async def test_without_a_key_every_call_is_a_new_session(client: httpx.AsyncClient) -> None:
    first = (await create_session(client)).json()
    second = (await create_session(client)).json()

    assert first["session_id"] != second["session_id"]


async def test_an_idempotent_session_id_looks_like_any_other(client: httpx.AsyncClient) -> None:
    body = (await create(client, "order-1")).json()

    assert re.fullmatch(r"sess_[A-Za-z0-9_-]{22}", body["session_id"])
    assert body["room_name"] == f"foundry_nate_pm-agent_{body['session_id']}"


async def test_two_replicas_answer_the_same_key_with_the_same_session(
    settings: Settings,
) -> None:
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        first = (await create(one, "order-1")).json()
        again = (await create(two, "order-1")).json()
        refused = await create(two, "order-1", session_duration_hours=5)

    assert (again["session_id"], again["room_name"]) == (first["session_id"], first["room_name"])
    assert refused.status_code == 422


async def test_two_replicas_racing_on_one_key_agree(settings: Settings, standin: StandIn) -> None:
    answers: list[dict[str, Any]] = []

    async def ask(client: httpx.AsyncClient) -> None:
        answers.append((await create(client, "race-1")).json())

    standin.set_latency(0.05)  # both requests are in flight at LiveKit together
    async with (
        running_gateway(settings) as one,
        running_gateway(settings) as two,
        anyio.create_task_group() as race,
    ):
        race.start_soon(ask, one)
        race.start_soon(ask, two)

    assert len({answer["session_id"] for answer in answers}) == 1
    assert len({answer["token"] for answer in answers}) == 2


async def test_two_replicas_racing_with_different_bodies_let_one_win(settings: Settings) -> None:
    statuses: list[int] = []

    async def ask(client: httpx.AsyncClient, agent_id: str) -> None:
        statuses.append((await create(client, "race-2", agent_id=agent_id)).status_code)

    async with (
        running_gateway(settings) as one,
        running_gateway(settings) as two,
        anyio.create_task_group() as race,
    ):
        race.start_soon(ask, one, "pm-agent")
        race.start_soon(ask, two, "sales-agent")

    assert sorted(statuses) == [201, 422]


async def test_a_repeat_is_counted_as_a_replay_not_a_new_session(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "order-1")
    await create(client, "order-1")

    metrics = (await client.get("/metrics")).text
    assert "voice_gateway_sessions_created_total 1.0" in metrics
    assert "voice_gateway_idempotent_replays_total 1.0" in metrics


async def test_the_claim_room_is_not_a_session_and_dispatches_no_agent(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    session_id = (await create(client, "order-1")).json()["session_id"]
    claim = f"foundry_claim_{session_id}"

    assert standin.get_room_agents(claim) == []
    assert (await client.get(f"{SESSION}/{claim}")).status_code == 404


async def test_the_claim_room_closes_itself_a_little_after_the_session_ends(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    session_id = (await create(client, "order-1", session_duration_hours=1)).json()["session_id"]

    empty_timeout = standin.get_room(f"foundry_claim_{session_id}").empty_timeout

    assert 3600 < empty_timeout <= 3600 + 180


async def test_a_replay_after_delete_is_a_409_session_ended(client: httpx.AsyncClient) -> None:
    room_name = (await create(client, "order-1")).json()["room_name"]
    assert (await client.delete(f"{SESSION}/{room_name}")).status_code == 204

    response = await create(client, "order-1")

    assert response.status_code == 409
    assert response.json()["code"] == "session_ended"
    assert "new key" in response.json()["detail"]


async def test_a_replay_after_delete_recreates_no_session_room(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create(client, "order-1")).json()["room_name"]
    await client.delete(f"{SESSION}/{room_name}")

    await create(client, "order-1")

    assert not standin.has_room(room_name)
    assert (await client.get(f"{SESSION}/{room_name}")).status_code == 404


async def test_a_replay_of_a_live_session_still_works_after_another_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    ended = (await create(client, "order-1")).json()["room_name"]
    live = (await create(client, "order-2")).json()
    await client.delete(f"{SESSION}/{ended}")

    again = await create(client, "order-2")

    assert again.status_code == 201
    assert again.json()["session_id"] == live["session_id"]


async def test_a_new_key_after_delete_gets_a_new_session(client: httpx.AsyncClient) -> None:
    ended = (await create(client, "order-1")).json()
    await client.delete(f"{SESSION}/{ended['room_name']}")

    fresh = await create(client, "order-2")

    assert fresh.status_code == 201
    assert fresh.json()["session_id"] != ended["session_id"]


async def test_the_ended_claim_lasts_until_the_session_would_have_expired(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    body = (await create(client, "order-1", session_duration_hours=1)).json()
    await client.delete(f"{SESSION}/{body['room_name']}")

    claim = standin.get_room(f"foundry_claim_{body['session_id']}")

    closes_at = datetime.fromtimestamp(claim.creation_time + claim.empty_timeout, UTC)
    assert closes_at >= datetime.fromisoformat(body["expires_at"])


async def test_delete_marks_the_claim_ended_before_it_deletes_the_room(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    # The other way round, a replay between the two calls could recreate the room.
    room_name = (await create(client, "order-1")).json()["room_name"]
    before = len(standin.requests())

    await client.delete(f"{SESSION}/{room_name}")

    methods = [call.method for call in standin.requests()[before:]]
    # Then the end mark (sessions/endings.py), then the room.
    assert methods[-3:] == ["UpdateRoomMetadata", "CreateRoom", "DeleteRoom"]


async def test_a_session_without_a_key_is_still_deleted(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    room_name = (await create_session(client)).json()["room_name"]

    assert (await client.delete(f"{SESSION}/{room_name}")).status_code == 204
    assert not standin.has_room(room_name)


@pytest.mark.parametrize("key", ["", "x" * 256, "white space", "tab\there"])
async def test_an_unusable_key_is_a_422_naming_the_header(
    client: httpx.AsyncClient, key: str
) -> None:
    response = await create(client, key)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_non_ascii_key_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SESSION, json=SESSION_BODY, headers=[(b"Idempotency-Key", "clé".encode())]
    )

    assert response.status_code == 422


async def test_two_keys_are_a_422_and_create_nothing(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    # The first was used: a client meaning the second would have been replayed another session.
    headers = [(b"Idempotency-Key", b"order-1"), (b"Idempotency-Key", b"order-2")]
    response = await client.post(SESSION, json=SESSION_BODY, headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "Idempotency-Key", "message": "must be sent once"}
    ]
    assert standin.rooms == {}


async def test_the_same_key_sent_twice_is_that_key(client: httpx.AsyncClient) -> None:
    headers = [(b"Idempotency-Key", b"order-1"), (b"Idempotency-Key", b"order-1")]
    twice = await client.post(SESSION, json=SESSION_BODY, headers=headers)
    once = await client.post(SESSION, json=SESSION_BODY, headers={"Idempotency-Key": "order-1"})

    assert twice.status_code == 201
    assert twice.json()["session_id"] == once.json()["session_id"]


def test_session_ids_are_a_keyed_hash_of_caller_and_key() -> None:
    ids = SessionIds(SecretStr("one-secret"))

    assert ids.session_id("service:", "k") == SessionIds(SecretStr("one-secret")).session_id(
        "service:", "k"
    )
    assert ids.session_id("service:", "k") != SessionIds(SecretStr("other")).session_id(
        "service:", "k"
    )
    assert ids.session_id("service:", "k") != ids.session_id("end_user:ada", "k")
    # The framing is unambiguous: moving characters between caller and key changes the id.
    assert ids.session_id("a", "bc") != ids.session_id("ab", "c")
