"""Fuzzing: schemathesis against the gateway's own /openapi.json, with credentials.

The gateway runs as `serve` runs it (uvicorn, on a free port) in front of the LiveKit stand-in.
Every documented operation gets valid and invalid requests (bounded examples, fixed seed); no
answer may be a 5xx, and every answer must be documented: status, content type, headers, schema.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.gateway import make_settings
from tests.support.keys import SERVICE_AUTH, SERVICE_KEY
from tests.support.live_gateway import live_gateway
from voice_gateway.standin import StandIn

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
SEED = 20251115
EXAMPLES_PER_MODE = 50
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = {
    GenerationMode.POSITIVE: CONFORMANCE,
    GenerationMode.NEGATIVE: [*CONFORMANCE, negative_data_rejection],
}


def fuzz(operation: Operation, mode: GenerationMode, base_url: str) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_MODE,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def one_case(case: schemathesis.Case[Operation]) -> None:
        response = case.call(base_url=base_url, headers=SERVICE_AUTH, timeout=10)
        case.validate_response(response, checks=CHECKS[mode], headers=SERVICE_AUTH)

    one_case()


def modes_for(operation: Operation) -> list[GenerationMode]:
    # Without parameters or a body there is no invalid request to make (probes, the document).
    if operation.path_parameters or operation.query or operation.body:
        return list(CHECKS)
    return [GenerationMode.POSITIVE]


def test_every_documented_operation_answers_as_documented(standin: StandIn) -> None:
    # One agent, served at once: a create that waits for its agent gets it, and any other agent
    # is refused (403), rather than waiting out the agent wait for a 504 no client could avoid.
    standin.agents.serve("pm-agent", join_after_s=0)
    settings = make_settings(standin, api_keys=[SERVICE_KEY], allowed_agents=["pm-agent"])
    with live_gateway(settings) as (host, port):
        base_url = f"http://{host}:{port}"
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        results = list(schema.get_all_operations())
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert len(operations) == len(results), "the document has an invalid operation"
        for operation in operations:
            for mode in modes_for(operation):
                fuzz(operation, mode, base_url)

    assert {op.label for op in operations} >= {
        "POST /api/voice/session",
        "GET /api/voice/session/{room_name}",
        "DELETE /api/voice/session/{room_name}",
        "POST /api/voice/token",
        "POST /api/voice/webhook",
        "GET /api/voice/sessions",
        "GET /api/voice/usage",
    }
