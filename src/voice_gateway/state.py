"""What the lifespan hands to handlers, and typed access to it."""

from __future__ import annotations

from typing import TypedDict, cast

from starlette.requests import Request

from .access import AccessControl
from .drain import Drain
from .metrics import Metrics
from .readiness import Readiness
from .service import SessionService
from .settings import Settings


class AppState(TypedDict):
    settings: Settings
    sessions: SessionService
    metrics: Metrics
    drain: Drain
    access: AccessControl
    readiness: Readiness


def sessions_of(request: Request) -> SessionService:
    return cast(SessionService, request.state.sessions)


def settings_of(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def metrics_of(request: Request) -> Metrics:
    return cast(Metrics, request.state.metrics)


def drain_of(request: Request) -> Drain:
    return cast(Drain, request.state.drain)


def readiness_of(request: Request) -> Readiness:
    return cast(Readiness, request.state.readiness)


def access_of(request: Request) -> AccessControl:
    return cast(AccessControl, request.state.access)
