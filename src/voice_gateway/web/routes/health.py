"""Liveness and readiness, for orchestrators' probes."""

from __future__ import annotations

from starlette.responses import Response

from ..endpoint import Endpoint
from ..models import HealthStatus
from ..openapi import Operation
from ..problems import SHUTTING_DOWN, HttpProblem, problem_response
from ..responses import model_response
from ..state import GatewayRequest


async def healthz(request: GatewayRequest) -> Response:
    """The process serves. Deliberately touches nothing else: a LiveKit outage is not a reason
    for an orchestrator to restart the gateway."""
    return model_response(HealthStatus(status="ok"))


async def readyz(request: GatewayRequest) -> Response:
    if request.state["drain"].started:
        # Draining: tell load balancers to route elsewhere, whatever LiveKit says.
        return problem_response(request, SHUTTING_DOWN, "Not ready: the gateway is shutting down")
    # Shared and reused for a second (readiness.py): the path is public, LiveKit calls are not free.
    failure = await request.state["readiness"].failure()
    if failure is not None:
        # Not ready, whatever LiveKit's failure: 503 tells a load balancer to route elsewhere.
        not_ready = HttpProblem(503, failure.code, "Not ready")
        return problem_response(request, not_ready, f"Not ready: {failure.detail}")
    return model_response(HealthStatus(status="ready"))


ENDPOINTS = (
    Endpoint(
        healthz,
        Operation(
            "get", "/healthz", "Liveness: the process serves", 200, HealthStatus, public=True
        ),
    ),
    Endpoint(
        readyz,
        Operation(
            "get",
            "/readyz",
            "Readiness: LiveKit answers and accepts our credentials, and no shutdown has begun",
            200,
            HealthStatus,
            problems=(503,),
            public=True,
        ),
    ),
)
