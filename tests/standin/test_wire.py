"""The HTTP shape of the API: routes, encodings, error bodies, health, as raw HTTP sees them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from livekit.api import CreateRoomRequest, ListRoomsResponse, Room

from tests.support.twirp import CREATE, LIST, TWIRP, bearer
from voice_gateway.standin import StandIn


async def create_json(http: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await http.post(f"{TWIRP}CreateRoom", json=body, headers=bearer(CREATE))


async def test_json_request_gets_json_with_snake_case_keys_and_defaults(
    http: httpx.AsyncClient,
) -> None:
    response = await create_json(http, {"name": "r1"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    room = response.json()
    assert room["empty_timeout"] == 300
    assert (room["num_participants"], room["active_recording"]) == (0, False)
    assert isinstance(room["creation_time"], str)  # int64 as a string
    assert room["version"] is None  # unset messages are null, as Go's EmitUnpopulated writes


async def test_json_request_accepts_camel_case_and_ignores_unknown_keys(
    http: httpx.AsyncClient,
) -> None:
    response = await create_json(http, {"name": "r1", "emptyTimeout": 9, "no_such_field": 1})

    assert response.json()["empty_timeout"] == 9


async def test_json_list_of_no_rooms_is_an_empty_array(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{TWIRP}ListRooms", json={}, headers=bearer(LIST))

    assert response.json() == {"rooms": []}


async def test_protobuf_request_gets_protobuf(http: httpx.AsyncClient) -> None:
    body = CreateRoomRequest(name="r1").SerializeToString()
    headers = bearer(CREATE) | {"Content-Type": "application/protobuf"}

    response = await http.post(f"{TWIRP}CreateRoom", content=body, headers=headers)

    assert response.headers["content-type"] == "application/protobuf"
    assert Room.FromString(response.content).name == "r1"


async def test_empty_protobuf_body_is_an_empty_request(http: httpx.AsyncClient) -> None:
    headers = bearer(LIST) | {"Content-Type": "application/protobuf"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"", headers=headers)

    assert response.status_code == 200
    assert ListRoomsResponse.FromString(response.content) == ListRoomsResponse()


async def test_content_type_parameters_and_case_are_ignored(http: httpx.AsyncClient) -> None:
    headers = bearer(LIST) | {"Content-Type": "Application/JSON; charset=utf-8"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"{}", headers=headers)

    assert response.status_code == 200


async def test_empty_json_body_is_malformed(http: httpx.AsyncClient) -> None:
    headers = bearer(LIST) | {"Content-Type": "application/json"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"", headers=headers)

    assert response.status_code == 400
    assert response.json() == {
        "code": "malformed",
        "msg": "the json request could not be decoded",
    }


async def test_bad_protobuf_body_is_malformed(http: httpx.AsyncClient) -> None:
    headers = bearer(LIST) | {"Content-Type": "application/protobuf"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"\xff\xff\xff", headers=headers)

    assert (response.status_code, response.json()["code"]) == (400, "malformed")
    assert response.json()["msg"] == "the protobuf request could not be decoded"


async def test_malformed_body_is_reported_before_missing_grants(http: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"{", headers=headers)

    assert response.status_code == 400


async def test_unexpected_content_type_is_a_bad_route(http: httpx.AsyncClient) -> None:
    headers = bearer(LIST) | {"Content-Type": "text/plain"}

    response = await http.post(f"{TWIRP}ListRooms", content=b"{}", headers=headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": "bad_route",
        "msg": 'unexpected Content-Type: "text/plain"',
        "meta": {"twirp_invalid_route": f"POST {TWIRP}ListRooms"},
    }


async def test_get_on_a_twirp_path_is_a_bad_route(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{TWIRP}ListRooms")

    assert response.status_code == 404
    assert response.json() == {
        "code": "bad_route",
        "msg": 'unsupported method "GET" (only POST is allowed)',
        "meta": {"twirp_invalid_route": f"GET {TWIRP}ListRooms"},
    }


@pytest.mark.parametrize("path", [f"{TWIRP}NoSuchMethod", "/twirp/livekit.NoSuchService/ListRooms"])
async def test_unknown_method_or_service_is_a_bad_route(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(path, json={}, headers=bearer(LIST))

    assert response.status_code == 404
    assert response.json()["code"] == "bad_route"
    assert response.json()["msg"] == f'no handler for path "{path}"'


async def test_other_paths_are_go_plain_not_found(http: httpx.AsyncClient) -> None:
    response = await http.get("/rtc")

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "404 page not found\n"


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_root_answers_ok_to_any_method(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/")

    assert response.status_code == 200
    assert response.text == ("" if method == "HEAD" else "OK")


async def test_leading_double_slash_is_collapsed(http: httpx.AsyncClient, standin: StandIn) -> None:
    # A full URL: httpx would read a relative "//twirp/..." as a host name.
    url = f"{standin.url}/{TWIRP}ListRooms"
    response = await http.post(url, json={}, headers=bearer(LIST))

    assert response.status_code == 200
