"""What the lifespan hands to handlers, and typed access to it."""

from __future__ import annotations

from typing import TypedDict, cast

from starlette.requests import Request

from .service import SessionService
from .settings import Settings


class AppState(TypedDict):
    settings: Settings
    sessions: SessionService


def sessions_of(request: Request) -> SessionService:
    return cast(SessionService, request.state.sessions)


def settings_of(request: Request) -> Settings:
    return cast(Settings, request.state.settings)
