"""`caller_of` fails closed: a handler reached without an authenticated caller refuses, never
trusts."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.support.gateway import running_app
from tests.support.problems import assert_problem
from voice_gateway.errors import Unauthenticated
from voice_gateway.settings import Settings
from voice_gateway.web.app import create_app
from voice_gateway.web.middleware.access import caller_of


def test_a_request_without_a_caller_in_its_state_is_unauthenticated() -> None:
    bare = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}})

    with pytest.raises(Unauthenticated):
        caller_of(bare)


async def test_a_handler_the_access_middleware_skipped_answers_401_even_when_open(
    settings: Settings,
) -> None:
    async def who(request: Request) -> Response:
        return PlainTextResponse(caller_of(request).kind.value)

    # The gateway runs open (anonymous callers with full rights), but a public path is never
    # given a caller: a handler there that asks for one must be refused, not made anonymous.
    app = create_app(settings)
    app.router.routes.insert(0, Route("/metrics", who, methods=["GET"]))
    async with running_app(app) as client:
        response = await client.get("/metrics")

    assert_problem(response, 401, "unauthenticated")
