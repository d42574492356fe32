"""What the lifespan hands to handlers, and typed access to it."""

from __future__ import annotations

from typing import TypedDict, cast

from starlette.requests import Request

from ..access.control import AccessControl
from ..ops.metrics import Metrics
from ..ops.readiness import Readiness
from ..sessions.service import SessionService
from ..settings import Settings
from .middleware.drain import Drain


class AppState(TypedDict):
    settings: Settings
    sessions: SessionService
    metrics: Metrics
    drain: Drain
    access: AccessControl
    readiness: Readiness


def app_state(request: Request) -> AppState:
    """The lifespan's state as this request sees it (typed by `AppState`, one accessor for all)."""
    return cast(AppState, request.scope["state"])
