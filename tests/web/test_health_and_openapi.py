"""Probes for orchestrators, and the OpenAPI document."""

from __future__ import annotations

import anyio
import httpx
from pydantic import TypeAdapter

from tests.support.gateway import make_settings, running_gateway
from voice_gateway.standin import StandIn
from voice_gateway.web.endpoint import public_paths_of
from voice_gateway.web.models import Problem, SessionCreated, SessionRequest
from voice_gateway.web.routes import ENDPOINTS


async def test_healthz_answers_while_the_process_serves(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_does_not_depend_on_livekit(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.refuse_connections()

    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_is_200_when_livekit_accepts_our_credentials(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_when_livekit_is_unreachable(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.refuse_connections()

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["code"] == "livekit_unavailable"


async def test_readyz_is_503_when_livekit_rejects_our_credentials(standin: StandIn) -> None:
    settings = make_settings(standin, livekit_api_key="unknown-key")
    async with running_gateway(settings) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["code"] == "livekit_error"


async def readyz_turns(client: httpx.AsyncClient, status: int) -> None:
    """Polls /readyz until it answers `status`: a check's outcome is reused for a second."""
    with anyio.fail_after(3):
        while (await client.get("/readyz")).status_code != status:  # noqa: ASYNC110
            await anyio.sleep(0.05)


async def test_readyz_turns_ready_again_when_livekit_returns(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.refuse_connections()
    assert (await client.get("/readyz")).status_code == 503

    standin.accept_connections()

    await readyz_turns(client, 200)


async def test_readyz_turns_503_when_a_ready_gateways_livekit_fails(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    assert (await client.get("/readyz")).status_code == 200

    standin.refuse_connections()

    await readyz_turns(client, 503)


async def test_concurrent_readyz_probes_share_one_livekit_check(
    client: httpx.AsyncClient, standin: StandIn
) -> None:
    before = standin.requests_count("ListRooms")
    statuses: list[int] = []

    async def probe() -> None:
        statuses.append((await client.get("/readyz")).status_code)

    async with anyio.create_task_group() as probes:
        for _ in range(20):
            probes.start_soon(probe)

    assert statuses == [200] * 20
    assert standin.requests_count("ListRooms") - before <= 2


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) >= {
        "/api/voice/session",
        "/api/voice/session/{room_name}",
        "/healthz",
        "/readyz",
        "/openapi.json",
    }
    assert set(document["paths"]["/api/voice/session/{room_name}"]) == {"get", "delete"}


async def test_openapi_schemas_are_the_models_that_validate(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]

    # user_id is optional on the wire: an end user's comes from its token.
    assert schemas["SessionRequest"]["required"] == ["agent_id"]
    assert schemas["SessionRequest"]["additionalProperties"] is False
    user_id = schemas["SessionRequest"]["properties"]["user_id"]
    assert user_id["pattern"] == SessionRequest.model_fields["user_id"].metadata[0].pattern
    # `agent` only answers a create that waited for it.
    required = set(SessionCreated.model_fields) - {"agent"}
    assert set(schemas["SessionCreated"]["required"]) == required


async def test_openapi_documents_problem_json_errors(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/api/voice/session"]["post"]["responses"]

    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for status in ("400", "422", "502", "503", "504"):
        assert create[status]["content"]["application/problem+json"]["schema"] == problem_ref
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(
        document["components"]["schemas"]["Problem"]["required"]
    )


async def test_a_real_problem_body_matches_the_documented_schema(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/voice/session", json={"user_id": ""})

    TypeAdapter(Problem).validate_python(response.json())


async def test_metrics_count_created_sessions_and_livekit_calls(client: httpx.AsyncClient) -> None:
    await client.post("/api/voice/session", json={"user_id": "nate", "agent_id": "pm-agent"})

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "voice_gateway_sessions_created_total 1.0" in response.text
    assert 'voice_gateway_livekit_call_seconds_count{method="CreateRoom",outcome="ok"} 1.0' in (
        response.text
    )


async def test_openapi_documents_credentials_refusals_and_limits(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/api/voice/session"]["post"]
    read = document["paths"]["/api/voice/session/{room_name}"]["get"]

    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert create["security"] == [{"bearerAuth": []}]
    assert {"401", "403", "413", "429"} <= set(create["responses"])
    assert "WWW-Authenticate" in create["responses"]["401"]["headers"]
    assert "Retry-After" in read["responses"]["429"]["headers"]
    assert {"401", "403", "429"} <= set(read["responses"])


async def test_openapi_marks_exactly_the_public_paths_as_needing_no_credentials(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    public = {
        path for path, ops in paths.items() if all(op["security"] == [] for op in ops.values())
    }

    # Both come from the endpoints' declarations; the literal says which ones they must be.
    assert public == public_paths_of(ENDPOINTS)
    assert public == {"/healthz", "/readyz", "/metrics", "/openapi.json", "/api/voice/webhook"}


async def test_openapi_documents_the_token_and_webhook_endpoints(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    token = paths["/api/voice/token"]["post"]
    assert set(token["responses"]) >= {"201", "403", "422"}
    assert token["requestBody"]["required"] is False
    webhook = paths["/api/voice/webhook"]["post"]
    assert "application/webhook+json" in webhook["requestBody"]["content"]
    assert "401" in webhook["responses"]


async def test_openapi_documents_the_idempotency_key_header(client: httpx.AsyncClient) -> None:
    create = (await client.get("/openapi.json")).json()["paths"]["/api/voice/session"]["post"]

    (header,) = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header"
    assert header["required"] is False


async def test_openapi_documents_x_request_id_on_every_response(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    responses = [
        (f"{method} {path} {status}", response)
        for path, operations in paths.items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
    ]

    undocumented = [where for where, r in responses if "X-Request-ID" not in r.get("headers", {})]
    assert len(responses) > 20
    assert undocumented == []


async def test_openapi_documents_x_request_id_as_an_optional_request_header(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    offered = [
        [p for p in operation["parameters"] if p["name"] == "X-Request-ID"]
        for operations in paths.values()
        for operation in operations.values()
    ]

    assert all(
        len(params) == 1 and params[0]["in"] == "header" and params[0]["required"] is False
        for params in offered
    )
