"""The app factory. Settings are read here, once, never at import; the lifespan owns resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from ..access.control import open_access_control
from ..errors import GatewayError
from ..livekit.clients import open_livekit
from ..ops.drain import Drain
from ..ops.loop_lag import watch_loop_lag
from ..ops.metrics import Metrics
from ..ops.readiness import Readiness
from ..sessions.admission import open_admission
from ..sessions.event_outbox import open_event_outbox
from ..sessions.reaper import ExpiryReaper, sweep_forever
from ..sessions.service import open_session_service
from ..sessions.webhook_intake import WebhookIntake
from ..settings import Settings
from .endpoint import operations_of, public_paths_of, routes_of
from .middleware.access import AccessMiddleware
from .middleware.body_limit import BodyLimitMiddleware
from .middleware.cors import AllowlistCORSMiddleware
from .middleware.request_observer import RequestObserver
from .openapi import build_openapi
from .problems import (
    on_client_disconnect,
    on_gateway_error,
    on_http_exception,
    on_unexpected_error,
)
from .routes import ENDPOINTS
from .state import AppState

logger = logging.getLogger("voice_gateway.app")  # pinned: logs know it by this name
ROUTES = routes_of(ENDPOINTS)
EXCEPTION_HANDLERS = {
    GatewayError: on_gateway_error,
    HTTPException: on_http_exception,
    ClientDisconnect: on_client_disconnect,
    Exception: on_unexpected_error,
}


def create_app(
    settings: Settings | None = None, drain: Drain | None = None, metrics: Metrics | None = None
) -> Starlette:
    """`drain` and `metrics` are shared with the server that runs the app (see `ops/server.py`:
    it drains, and its protocol counts the connections it sheds); tests pass their own drain to
    see what draining changes."""
    settings = settings or Settings()  # the environment fills it
    drain = drain or Drain()
    # Built with the app, not in the lifespan: the request middleware records into it too.
    metrics = metrics or Metrics()
    app = Starlette(
        routes=ROUTES,
        middleware=middleware(settings, metrics, drain),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=partial(lifespan, settings=settings, metrics=metrics, drain=drain),
    )
    # A path with a slash too many is a 404 problem, as any unknown path: not Starlette's bare
    # 307 to the path without it, whose Location it builds from the request's Host header.
    app.router.redirect_slashes = False
    return app


def middleware(settings: Settings, metrics: Metrics, drain: Drain) -> list[Middleware]:
    # Outermost first. CORS before access, so preflights need no credentials; access before
    # the body limit, so a caller without credentials is refused before any body is read.
    # With no origins allowed CORS has nothing to do: not a layer every request passes through.
    cors = [Middleware(AllowlistCORSMiddleware, origins=settings.cors_origins)]
    return [
        Middleware(
            RequestObserver, metrics=metrics, drain=drain, cors_origins=settings.cors_origins
        ),
        *(cors if settings.cors_origins else []),
        Middleware(AccessMiddleware, public_paths=public_paths_of(ENDPOINTS)),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]


@asynccontextmanager
async def lifespan(
    app: Starlette, *, settings: Settings, metrics: Metrics, drain: Drain
) -> AsyncIterator[AppState]:
    """Everything the app holds while it serves, opened in order and closed in reverse."""
    async with (
        open_access_control(settings) as access,
        open_livekit(settings, metrics) as livekit,
        open_admission(settings, metrics) as admission,
        # Before the sessions, so it closes after them: ends during shutdown still send events.
        open_event_outbox(settings, metrics, drain) as outbox,
        open_session_service(settings, livekit, metrics, admission, outbox) as sessions,
        anyio.create_task_group() as background,
    ):
        reaper = ExpiryReaper(sessions, metrics)
        background.start_soon(sweep_forever, reaper, settings.reaper_interval_s)
        background.start_soon(sessions.agent_watch.run)
        lag = (settings.loop_lag_interval_s, settings.loop_lag_warning_s, metrics.loop_lag)
        background.start_soon(watch_loop_lag, *lag)
        yield AppState(
            settings=settings,
            sessions=sessions,
            webhooks=WebhookIntake(livekit.webhooks, sessions, settings.room_prefix, metrics),
            admission=admission,
            metrics=metrics,
            drain=drain,
            access=access,
            readiness=Readiness(livekit.rooms.check_access),
            openapi=build_openapi(operations_of(ENDPOINTS)),
        )
        background.cancel_scope.cancel()
    logger.info("stopped: background tasks ended and the LiveKit client is closed")
