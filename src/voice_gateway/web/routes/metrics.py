"""`/metrics`: Prometheus text format, for the app's own registry."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from ..endpoint import Endpoint
from ..openapi import Operation
from ..state import GatewayRequest


async def metrics(request: GatewayRequest) -> Response:
    return Response(request.state["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = (
    Endpoint(
        metrics,
        Operation(
            "get",
            "/metrics",
            "Prometheus metrics: requests, LiveKit calls, sessions, thread limiter, event-loop lag",
            200,
            None,
            ok_text_type="text/plain; version=0.0.4",
            public=True,
        ),
    ),
)
