"""Every endpoint of the gateway: the one list the app's routes, its OpenAPI document and the
access middleware's public paths are derived from."""

from __future__ import annotations

from ..endpoint import Endpoint
from . import docs, health, metrics, sessions, token, usage, webhook

ENDPOINTS: tuple[Endpoint, ...] = (
    *sessions.ENDPOINTS,
    *token.ENDPOINTS,
    *usage.ENDPOINTS,
    *webhook.ENDPOINTS,
    *health.ENDPOINTS,
    *metrics.ENDPOINTS,
    *docs.ENDPOINTS,
)
