"""Bad input to POST /api/voice/session: a clear 4xx problem, never a 500, nothing created."""

from __future__ import annotations

import httpx
import pytest

from tests.support.gateway import SESSION_BODY, make_settings, running_gateway
from tests.support.problems import assert_problem, field_names
from voice_gateway.standin import StandIn


async def assert_only_field_refused(client: httpx.AsyncClient, field: str, value: object) -> None:
    response = await client.post("/api/voice/session", json=SESSION_BODY | {field: value})

    assert_problem(response, 422, "invalid_request")
    assert field_names(response) == [field]


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"user_id": "nate",}', b"\xff\xfe\x00"])
async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/api/voice/session", content=raw, headers={"Content-Type": "application/json"}
    )

    assert "not valid JSON" in assert_problem(response, 400, "invalid_request")["detail"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"user_id": "nate", "agent_id": "pm-agent", "user_id": "evil"}', 'the key "user_id"'),
        (b'{"agent_id": "pm-agent", "user_id": "nate", "x": {"k": 1, "k": 1}}', 'the key "k"'),
        ('{"user_id": "nate"}'.encode("utf-16"), "not UTF-8"),
        (b'{"session_duration_hours": 1' + b"0" * 5000 + b"}", "more than 4300 digits"),
    ],
    ids=["duplicate-key", "duplicate-nested-key", "utf-16", "long-number"],
)
async def test_json_this_gateway_does_not_guess_at_is_a_400_saying_why(
    client: httpx.AsyncClient, standin: StandIn, raw: bytes, reason: str
) -> None:
    # A duplicate key's last value counted (a room for "evil"), while a proxy or validator in
    # front may read the first; UTF-16 was read, against RFC 8259; a long number's detail gave
    # CPython's advice to the server (sys.set_int_max_str_digits).
    response = await client.post("/api/voice/session", content=raw)

    detail = assert_problem(response, 400, "invalid_request")["detail"]
    assert reason in detail
    assert "sys." not in detail
    assert standin.rooms == {}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
    ],
)
async def test_a_body_that_says_it_is_not_json_is_a_415(
    client: httpx.AsyncClient, standin: StandIn, content_type: str
) -> None:
    # Read as JSON before: a browser sends these three cross-origin without a preflight.
    body = b'{"user_id": "nate", "agent_id": "pm-agent"}'
    response = await client.post(
        "/api/voice/session", content=body, headers={"Content-Type": content_type}
    )

    detail = assert_problem(response, 415, "unsupported_media_type")["detail"]
    assert "send Content-Type: application/json" in detail or "must be UTF-8" in detail
    assert standin.rooms == {}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "Application/JSON; charset=UTF-8",
        'application/json; charset="utf8"',
        "application/json; charset=us-ascii",
        "application/merge+json",
    ],
)
async def test_json_or_no_content_type_is_read(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    body = b'{"user_id": "nate", "agent_id": "pm-agent"}'
    response = await client.post("/api/voice/session", content=body, headers=headers)

    assert response.status_code == 201


async def test_an_empty_body_is_not_refused_for_its_content_type(
    client: httpx.AsyncClient,
) -> None:
    # Read as no fields: a 422 naming them, not a 415 about a body that is not there.
    headers = {"Content-Type": "text/plain"}
    response = await client.post("/api/voice/session", content=b"", headers=headers)

    assert set(field_names(response)) == {"user_id", "agent_id"}


async def test_a_utf8_byte_order_mark_is_allowed(client: httpx.AsyncClient) -> None:
    raw = b'\xef\xbb\xbf{"user_id": "nate", "agent_id": "pm-agent"}'

    assert (await client.post("/api/voice/session", content=raw)).status_code == 201


@pytest.mark.parametrize("raw", [b"[]", b'"nate"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_a_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/api/voice/session", content=raw)

    assert_problem(response, 400, "invalid_request")


async def test_every_invalid_field_is_named(client: httpx.AsyncClient) -> None:
    body = {"user_id": "", "agent_id": "PM Agent", "session_duration_hours": -1}
    response = await client.post("/api/voice/session", json=body)

    problem = assert_problem(response, 422, "invalid_request")
    assert set(field_names(response)) == {"user_id", "agent_id", "session_duration_hours"}
    assert "user_id" in problem["detail"]


async def test_missing_required_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", json={})

    assert_problem(response, 422, "invalid_request")
    assert set(field_names(response)) == {"user_id", "agent_id"}


async def test_an_unknown_field_is_refused_rather_than_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", json=SESSION_BODY | {"duration": 3})

    assert_problem(response, 422, "invalid_request")
    assert field_names(response) == ["duration"]


@pytest.mark.parametrize(
    "user_id",
    ["a" * 129, "nate smith", "nate\n", "nate\x00", "näte", "../etc", "nate/1", "na%2Fte", "😀"],
)
async def test_user_ids_outside_the_alphabet_or_length_are_refused(
    client: httpx.AsyncClient, user_id: str
) -> None:
    await assert_only_field_refused(client, "user_id", user_id)


@pytest.mark.parametrize("agent_id", ["a" * 65, "PM-Agent", "pm.agent", "pm agent", ""])
async def test_agent_ids_outside_the_alphabet_or_length_are_refused(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    response = await client.post("/api/voice/session", json=SESSION_BODY | {"agent_id": agent_id})

    assert field_names(response) == ["agent_id"]


async def test_longest_valid_ids_are_accepted(client: httpx.AsyncClient) -> None:
    body = {"user_id": "U" * 128, "agent_id": "a" * 64}
    response = await client.post("/api/voice/session", json=body)

    assert response.status_code == 201


@pytest.mark.parametrize("hours", [0, -0.5, "2", True, None, [], {}])
async def test_duration_must_be_a_positive_number(client: httpx.AsyncClient, hours: object) -> None:
    await assert_only_field_refused(client, "session_duration_hours", hours)


@pytest.mark.parametrize("wait", ["yes", "true", "false", 1, 0, None])
async def test_wait_for_agent_must_be_a_json_boolean(
    client: httpx.AsyncClient, wait: object
) -> None:
    await assert_only_field_refused(client, "wait_for_agent", wait)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_non_finite_numbers_are_refused_naming_the_field(
    client: httpx.AsyncClient, literal: bytes
) -> None:
    raw = b'{"user_id": "nate", "agent_id": "pm-agent", "session_duration_hours": ' + literal + b"}"
    response = await client.post("/api/voice/session", content=raw)

    assert_problem(response, 422, "invalid_request")
    assert field_names(response) == ["session_duration_hours"]


async def test_duration_above_the_configured_maximum_is_refused(standin: StandIn) -> None:
    async with running_gateway(make_settings(standin, max_session_hours=4)) as client:
        accepted = await client.post(
            "/api/voice/session", json=SESSION_BODY | {"session_duration_hours": 4}
        )
        refused = await client.post(
            "/api/voice/session", json=SESSION_BODY | {"session_duration_hours": 4.01}
        )

    assert accepted.status_code == 201
    assert_problem(refused, 422, "invalid_request")
    assert "at most 4 hours" in refused.json()["errors"][0]["message"]


async def test_default_maximum_is_24_hours(client: httpx.AsyncClient) -> None:
    body = SESSION_BODY | {"session_duration_hours": 24.5}
    response = await client.post("/api/voice/session", json=body)

    assert field_names(response) == ["session_duration_hours"]


async def test_invalid_input_creates_no_room(client: httpx.AsyncClient, standin: StandIn) -> None:
    before = standin.requests_count("CreateRoom")
    await client.post("/api/voice/session", json={"user_id": "bad id", "agent_id": "x"})

    assert standin.requests_count("CreateRoom") == before


async def test_input_values_are_not_echoed_in_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/voice/session", json=SESSION_BODY | {"user_id": "s3cr3t!"})

    assert "s3cr3t" not in response.text


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/voice/nothing-here")

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("path", ["/api/voice/session/", "/healthz/"])
async def test_a_trailing_slash_is_a_404_problem_not_a_redirect(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Host": "evil.example"})

    assert "end without a slash" in assert_problem(response, 404, "not_found")["detail"]
    assert "location" not in response.headers


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/voice/session", json=SESSION_BODY)

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    # One route per endpoint: Starlette's Allow named the first route's only (GET, HEAD).
    response = await client.patch("/api/voice/session/foundry_nate_pm-agent_x")

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, GET, HEAD"
