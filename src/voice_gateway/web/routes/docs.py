"""`/openapi.json`: the document built once per app from every endpoint's declaration."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from ..endpoint import Endpoint
from ..openapi import Operation
from ..state import GatewayRequest


async def openapi_json(request: GatewayRequest) -> Response:
    return JSONResponse(request.state["openapi"])


ENDPOINTS = (
    Endpoint(
        openapi_json,
        Operation(
            "get",
            "/openapi.json",
            "This document",
            200,
            None,
            ok_json_schema={"type": "object"},
            public=True,
        ),
    ),
)
