"""The app factory. Settings are read here, once, never at import; the lifespan owns resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from .errors import GatewayError
from .metrics import Metrics
from .problems import on_gateway_error, on_http_exception, on_unexpected_error
from .request_id import RequestIdMiddleware
from .routes import docs, health, metrics_route, sessions
from .service import open_session_service
from .settings import Settings
from .state import AppState


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()  # the environment fills it

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        metrics = Metrics()
        async with open_session_service(settings, metrics) as session_service:
            yield AppState(settings=settings, sessions=session_service, metrics=metrics)

    return Starlette(
        routes=[*sessions.routes, *health.routes, *metrics_route.routes, docs.openapi_route()],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            GatewayError: on_gateway_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected_error,
        },
        lifespan=lifespan,
    )
