"""A bug in a handler still answers problem+json with the request id, and no traceback."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voice_gateway.settings import Settings
from voice_gateway.web.app import create_app


async def broken_handler(request: Request) -> Response:
    raise RuntimeError("secret internals that must not reach the client")


async def test_a_bug_is_a_500_problem_without_internals(settings: Settings) -> None:
    app = create_app(settings)
    app.router.routes.append(Route("/broken", broken_handler))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.get("/broken", headers={"X-Request-ID": "bug-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "bug-1"
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
