"""`/metrics`: Prometheus text format, for the app's own registry."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..state import app_state


async def metrics(request: Request) -> Response:
    return Response(app_state(request)["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
