"""RFC 9457 problem+json responses, for domain errors and for what the HTTP layer detects itself."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import HTTP_PROBLEMS, FieldError, GatewayError, HttpProblem, problem_type
from .middleware.request_id import HEADER as REQUEST_ID_HEADER
from .middleware.request_id import request_id_of
from .models import FieldProblem, Problem

MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("voice_gateway.problems")  # pinned: logs know it by this name


def problem_response(
    request: Request,
    kind: GatewayError | HttpProblem,
    detail: str,
    *,
    field_errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = request_id_of(request)
    problem = Problem(
        type=problem_type(kind.code),
        title=kind.title,
        status=kind.status,
        detail=detail,
        code=kind.code,
        request_id=request_id,
        errors=[FieldProblem(field=e.field, message=e.message) for e in field_errors] or None,
    )
    all_headers = {**kind.headers, **(headers or {}), REQUEST_ID_HEADER: request_id}
    body = problem.model_dump_json(exclude_none=True)
    return Response(body, kind.status, headers=all_headers, media_type=MEDIA_TYPE)


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return problem_response(request, exc, exc.detail, field_errors=exc.field_errors)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = HTTP_PROBLEMS.get(exc.status_code) or HttpProblem(exc.status_code, "http_error", "Error")
    return problem_response(request, kind, _http_detail(request, exc), headers=exc.headers)


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    # A bug: log it with its traceback for us, tell the client only that it happened and its id.
    logger.exception("unhandled error while serving %s %s", request.method, request.url.path)
    return problem_response(request, GatewayError(""), "The gateway failed; this is a bug.")


def _http_detail(request: Request, exc: HTTPException) -> str:
    if exc.status_code == 404:
        return f"No route matches {request.url.path}"
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return str(exc.detail)
