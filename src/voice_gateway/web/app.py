"""The app factory. Settings are read here, once, never at import; the lifespan owns resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..access.control import AccessMiddleware, open_access_control
from ..errors import GatewayError
from ..ops.loop_lag import watch_loop_lag
from ..ops.metrics import Metrics
from ..ops.readiness import Readiness
from ..sessions.reaper import sweep_forever
from ..sessions.service import open_session_service
from ..settings import Settings
from .middleware.body_limit import BodyLimitMiddleware
from .middleware.cors import AllowlistCORSMiddleware
from .middleware.drain import Drain, DrainMiddleware
from .middleware.request_id import RequestIdMiddleware
from .middleware.request_observer import RequestObserver
from .problems import on_gateway_error, on_http_exception, on_unexpected_error
from .routes import docs, health, sessions, token, webhook
from .routes import metrics as metrics_route
from .state import AppState

logger = logging.getLogger("voice_gateway.app")  # pinned: logs know it by this name


def create_app(settings: Settings | None = None, drain: Drain | None = None) -> Starlette:
    """`drain` is shared with the server that runs the app (see `server.py`); tests pass their
    own to see what draining changes."""
    settings = settings or Settings()  # the environment fills it
    drain = drain or Drain()
    # Built with the app, not in the lifespan: the request middleware records into it too.
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with (
            open_access_control(settings) as access,
            open_session_service(settings, metrics) as session_service,
            anyio.create_task_group() as background,
        ):
            background.start_soon(
                watch_loop_lag,
                settings.loop_lag_interval_s,
                settings.loop_lag_warning_s,
                metrics.loop_lag,
            )
            background.start_soon(sweep_forever, session_service, settings.reaper_interval_s)
            yield AppState(
                settings=settings,
                sessions=session_service,
                metrics=metrics,
                drain=drain,
                access=access,
                readiness=Readiness(session_service.check_livekit),
            )
            background.cancel_scope.cancel()
        logger.info("stopped: background tasks ended and the LiveKit client is closed")

    return Starlette(
        routes=[
            *sessions.routes,
            *token.routes,
            *webhook.routes,
            *health.routes,
            *metrics_route.routes,
            docs.openapi_route(),
        ],
        # Outermost first. CORS before access, so preflights need no credentials; access before
        # the body limit, so a caller without credentials is refused before any body is read.
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(RequestObserver, metrics=metrics),
            Middleware(DrainMiddleware, drain=drain),
            Middleware(AllowlistCORSMiddleware, origins=settings.cors_origins),
            Middleware(AccessMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            GatewayError: on_gateway_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected_error,
        },
        lifespan=lifespan,
    )
