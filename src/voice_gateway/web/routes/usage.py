"""`GET /api/voice/usage`: the session caps in the caller's scope and their live counts."""

from __future__ import annotations

from starlette.responses import Response

from ...sessions.admission import Usage
from ..endpoint import Endpoint
from ..middleware.access import caller_of
from ..models import AgentCapUsage, CapUsage, UsageView, UserCapUsage
from ..openapi import Operation
from ..responses import model_response
from ..state import GatewayRequest


async def usage(request: GatewayRequest) -> Response:
    found = await request.state["admission"].usage(caller_of(request))
    return model_response(usage_view(found))


def usage_view(usage: Usage) -> UsageView:
    agent = None
    if usage.agent_counts is not None:
        agent = AgentCapUsage(limit=usage.agent_limit, counts=usage.agent_counts)
    return UsageView(
        gateway=CapUsage(limit=usage.gateway.limit, count=usage.gateway.count or 0),
        user=UserCapUsage(limit=usage.user.limit, user_id=usage.user_id, count=usage.user.count),
        agent=agent,
    )


ENDPOINTS = (
    Endpoint(
        usage,
        Operation(
            "get",
            "/api/voice/usage",
            "The session caps in the caller's scope, with their live sessions",
            200,
            UsageView,
            description="Counts are live sessions (reserved from creation, or from the token "
            "endpoint's issue until its room appears), not requests. An end user sees the "
            "gateway's cap and its own; a service key sees the gateway's, every agent's count, "
            "and the per-user limit. 503 `admission_store_unavailable` when the counts live in "
            "Redis and Redis does not answer.",
        ),
    ),
)
