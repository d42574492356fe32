"""`/openapi.json`: built once per app, served as is."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..openapi import build_openapi


def openapi_route() -> Route:
    document = build_openapi()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    return Route("/openapi.json", openapi_json, methods=["GET"])
