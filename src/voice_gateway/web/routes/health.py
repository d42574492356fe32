"""Liveness and readiness, for orchestrators' probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import HttpProblem
from ..models import HealthStatus
from ..problems import problem_response
from ..responses import model_response
from ..state import app_state

SHUTTING_DOWN = HttpProblem(503, "shutting_down", "Not ready")


async def healthz(request: Request) -> Response:
    """The process serves. Deliberately touches nothing else: a LiveKit outage is not a reason
    for an orchestrator to restart the gateway."""
    return model_response(HealthStatus(status="ok"))


async def readyz(request: Request) -> Response:
    if app_state(request)["drain"].started:
        # Draining: tell load balancers to route elsewhere, whatever LiveKit says.
        return problem_response(request, SHUTTING_DOWN, "Not ready: the gateway is shutting down")
    # Shared and reused for a second (readiness.py): the path is public, LiveKit calls are not free.
    failure = await app_state(request)["readiness"].failure()
    if failure is not None:
        # Not ready, whatever LiveKit's failure: 503 tells a load balancer to route elsewhere.
        not_ready = HttpProblem(503, failure.code, "Not ready")
        return problem_response(request, not_ready, f"Not ready: {failure.detail}")
    return model_response(HealthStatus(status="ready"))


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
