"""POST /api/voice/token: the room configuration a client may ask for, and what it may not."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.gateway import make_settings, running_gateway
from tests.support.join_tokens import TOKEN, claims_of
from tests.support.problems import assert_problem
from voice_gateway.standin import StandIn

PM_AGENT = {"agents": [{"agent_name": "pm-agent"}]}


async def ask(client: httpx.AsyncClient, room_config: dict[str, Any]) -> httpx.Response:
    return await client.post(TOKEN, json={"room_config": room_config})


def agents_in(response: httpx.Response) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = claims_of(response)["roomConfig"].get("agents", [])
    return agents


@pytest.fixture
async def guarded(standin: StandIn) -> Any:
    settings = make_settings(standin, allowed_agents="pm-agent,sales-agent")
    async with running_gateway(settings) as client:
        yield client


async def test_an_allowed_agent_is_dispatched_in_the_token(guarded: httpx.AsyncClient) -> None:
    response = await ask(guarded, PM_AGENT)

    assert [agent["agentName"] for agent in agents_in(response)] == ["pm-agent"]


async def test_camel_case_room_config_is_read_too(guarded: httpx.AsyncClient) -> None:
    response = await ask(guarded, {"agents": [{"agentName": "pm-agent"}]})

    assert [agent["agentName"] for agent in agents_in(response)] == ["pm-agent"]


async def test_an_agent_outside_the_allowlist_is_an_invalid_request_as_on_session_create(
    guarded: httpx.AsyncClient,
) -> None:
    response = await ask(guarded, {"agents": [{"agent_name": "root-agent"}]})

    body = assert_problem(response, 422, "invalid_request")
    assert body["errors"][0]["field"] == "room_config.agents.0.agent_name"
    assert body["errors"][0]["message"] == "is not an agent this gateway dispatches"


async def test_any_agent_is_allowed_when_the_allowlist_is_empty(
    client: httpx.AsyncClient,
) -> None:
    response = await ask(client, {"agents": [{"agent_name": "any-agent"}]})

    assert [agent["agentName"] for agent in agents_in(response)] == ["any-agent"]


async def test_the_agents_metadata_from_the_client_is_passed_on(
    client: httpx.AsyncClient,
) -> None:
    response = await ask(client, {"agents": [{"agent_name": "pm-agent", "metadata": "job-1"}]})

    assert agents_in(response)[0]["metadata"] == "job-1"


async def test_without_client_metadata_the_agent_is_told_the_session(
    client: httpx.AsyncClient,
) -> None:
    response = await ask(client, PM_AGENT)
    told = json.loads(agents_in(response)[0]["metadata"])
    record = json.loads(claims_of(response)["roomConfig"]["metadata"])

    assert told["session_id"] == record["session_id"]


async def test_without_agents_none_is_dispatched(client: httpx.AsyncClient) -> None:
    assert agents_in(await ask(client, {})) == []


async def test_the_default_agent_is_dispatched_when_none_is_asked_for(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, default_agent="pm-agent")) as client:
        response = await ask(client, {})

    assert [agent["agentName"] for agent in agents_in(response)] == ["pm-agent"]


async def test_more_than_one_agent_is_refused(client: httpx.AsyncClient) -> None:
    two = {"agents": [{"agent_name": "pm-agent"}, {"agent_name": "sales-agent"}]}

    response = await ask(client, two)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "room_config.agents"


@pytest.mark.parametrize("name", ["", "PM Agent", "x" * 65])
async def test_an_agent_name_outside_the_alphabet_is_refused(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await ask(client, {"agents": [{"agent_name": name}]})

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("field", "value"),
    [("metadata", "x" * 9), ("attributes", {"k": "v" * 8}), ("deployment", "d" * 9)],
)
async def test_agent_fields_beyond_the_bound_are_refused(
    standin: StandIn, field: str, value: Any
) -> None:
    settings = make_settings(standin, max_client_metadata_bytes=8)
    async with running_gateway(settings) as client:
        response = await ask(client, {"agents": [{"agent_name": "a", field: value}]})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == f"room_config.agents.0.{field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("egress", {"room": {"room_name": "r", "file_outputs": [{"filepath": "x.mp4"}]}}),
        ("max_participants", 50),
        ("metadata", '{"session_id": "forged"}'),
        ("tags", {"team": "x"}),
        ("name", "foundry_someone-elses-room"),
        ("min_playout_delay", 100),
        ("max_playout_delay", 4_000_000_000),
        ("sync_streams", True),
        ("minPlayoutDelay", 100),
    ],
)
async def test_room_wide_powers_are_forbidden(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    response = await ask(client, {field: value})
    snake_case = "min_playout_delay" if field == "minPlayoutDelay" else field

    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == f"room_config.{snake_case}"


async def test_zero_values_of_refused_fields_are_what_mobile_sdks_send_and_pass(
    client: httpx.AsyncClient,
) -> None:
    zeros = {
        "max_participants": 0,
        "metadata": "",
        "empty_timeout": 0,
        "egress": None,
        "min_playout_delay": 0,
        "max_playout_delay": 0,
        "sync_streams": False,
    }

    assert (await ask(client, zeros)).status_code == 201


async def test_timeouts_within_the_gateways_are_honoured(client: httpx.AsyncClient) -> None:
    response = await ask(client, {"empty_timeout": 60, "departure_timeout": 5})
    config = claims_of(response)["roomConfig"]

    assert (config["emptyTimeout"], config["departureTimeout"]) == (60, 5)


async def test_without_timeouts_the_gateways_apply(client: httpx.AsyncClient) -> None:
    config = claims_of(await ask(client, {}))["roomConfig"]

    assert (config["emptyTimeout"], config["departureTimeout"]) == (120, 20)


@pytest.mark.parametrize(("field", "value"), [("empty_timeout", 301), ("departure_timeout", 21)])
async def test_timeouts_beyond_the_gateways_are_refused(
    client: httpx.AsyncClient, field: str, value: int
) -> None:
    response = await ask(client, {field: value})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == f"room_config.{field}"


@pytest.mark.parametrize(
    ("room_config", "field", "message"),
    [
        ({"agents": "pm-agent"}, "room_config.agents", "must be a list of objects"),
        # Read as an agent without a name before: its characters were taken for unknown fields.
        ({"agents": ["pm-agent"]}, "room_config.agents.0", "must be an object"),
        (
            {"agents": [{"attributes": "a=b"}]},
            "room_config.agents.0.attributes",
            "must be an object",
        ),
        ({"agents": [{"agent_name": 7}]}, "room_config.agents.agent_name", "must be a string"),
        (
            {"empty_timeout": -1},
            "room_config.empty_timeout",
            "must be an integer from 0 to 4294967295",
        ),
        (
            {"empty_timeout": 1.5},
            "room_config.empty_timeout",
            "must be an integer from 0 to 4294967295",
        ),
    ],
)
async def test_a_malformed_room_config_is_422_naming_the_field_and_what_it_must_be(
    client: httpx.AsyncClient, room_config: dict[str, Any], field: str, message: str
) -> None:
    response = await ask(client, room_config)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": message}]


async def test_a_malformed_room_config_is_not_echoed(client: httpx.AsyncClient) -> None:
    response = await ask(client, {"agents": "SECRET-LOOKING-VALUE"})

    assert "SECRET-LOOKING-VALUE" not in response.text
