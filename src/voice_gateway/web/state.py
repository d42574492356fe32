"""What the lifespan hands to handlers, typed: handlers take a `GatewayRequest` and read
`request.state["sessions"]` and the like (Starlette's `Request[State]`)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from starlette.requests import Request

from ..access.caller import Caller
from ..access.control import AccessControl
from ..ops.drain import Drain
from ..ops.metrics import Metrics
from ..ops.readiness import Readiness
from ..sessions.admission import Admission
from ..sessions.service import SessionService
from ..sessions.webhook_intake import WebhookIntake
from ..settings import Settings


class AppState(TypedDict):
    settings: Settings
    sessions: SessionService
    admission: Admission
    webhooks: WebhookIntake
    metrics: Metrics
    drain: Drain
    access: AccessControl
    readiness: Readiness
    openapi: dict[str, Any]
    # Per request, in a copy of the state: set by RequestObserver and the access middleware.
    request_id: NotRequired[str]
    caller: NotRequired[Caller]


GatewayRequest = Request[AppState]
