"""RFC 9457 problem+json: how each domain error answers over HTTP, and the problems the HTTP layer
detects itself (no route, wrong method)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from .. import errors
from ..errors import FieldError, GatewayError
from ..vocabulary import problem_type
from .middleware.request_id import HEADER as REQUEST_ID_HEADER
from .middleware.request_id import request_id_of
from .models import FieldProblem, Problem

MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("voice_gateway.problems")  # pinned: logs know it by this name


@dataclass(frozen=True)
class HttpProblem:
    """What a problem answers: status, stable code, title, and headers."""

    status: int
    code: str
    title: str
    headers: dict[str, str] = field(default_factory=dict)


# Status and title of each domain error; a subclass not listed answers as its nearest listed base.
STATUS_AND_TITLE: dict[type[GatewayError], tuple[int, str]] = {
    GatewayError: (500, "Internal error"),
    errors.MalformedRequest: (400, "Malformed request"),
    errors.InvalidRequest: (422, "Invalid request"),
    errors.IdempotencyConflict: (422, "Idempotency-Key reused with another request"),
    errors.PayloadTooLarge: (413, "Request body too large"),
    errors.UnsupportedMediaType: (415, "Unsupported media type"),
    errors.Unauthenticated: (401, "Authentication required"),
    errors.WebhookRejected: (401, "Webhook signature rejected"),
    errors.Forbidden: (403, "Forbidden"),
    errors.SessionNotFound: (404, "Session not found"),
    errors.SessionEnded: (409, "Session ended"),
    errors.TooManyRequests: (429, "Too many requests"),
    errors.ConcurrencyLimited: (429, "Session cap reached"),
    errors.LiveKitError: (502, "LiveKit answered with an error"),
    errors.LiveKitUnavailable: (503, "LiveKit is unavailable"),
    errors.LiveKitTimeout: (504, "LiveKit did not answer in time"),
    errors.IdentityProviderUnavailable: (503, "Identity provider unavailable"),
    errors.AgentTimeout: (504, "The agent did not join in time"),
    errors.AgentUnavailable: (503, "The agent is unavailable"),
    errors.AdmissionStoreUnavailable: (503, "Session counts unavailable"),
    errors.EventsUnavailable: (503, "Session events unavailable"),
}
# Draining: /readyz says so, and a request the stop cut off is answered with it.
SHUTTING_DOWN = HttpProblem(503, "shutting_down", "Shutting down")
ROUTING_PROBLEMS = {
    404: HttpProblem(404, "not_found", "Not found"),
    405: HttpProblem(405, "method_not_allowed", "Method not allowed"),
}


def problem_of(error: GatewayError) -> HttpProblem:
    kind = next(k for k in type(error).__mro__ if k in STATUS_AND_TITLE)
    status, title = STATUS_AND_TITLE[kind]
    return HttpProblem(status, error.code, title, _headers_of(error))


def _headers_of(error: GatewayError) -> dict[str, str]:
    if isinstance(error, errors.Unauthenticated):
        return {"WWW-Authenticate": error.challenge}
    if isinstance(error, errors.TooManyRequests | errors.LiveKitBusy | errors.EventsUnavailable):
        return {"Retry-After": str(error.retry_after_s)}
    return {}


def error_response(request: Request[Any], error: GatewayError) -> Response:
    kind, members = problem_of(error), _members_of(error)
    return problem_response(request, kind, error.detail, error.field_errors, members=members)


def _members_of(error: GatewayError) -> dict[str, Any]:
    if isinstance(error, errors.ConcurrencyLimited):
        # Which cap, its limit and its count: a client can tell its own cap from the gateway's.
        return {"cap": error.cap, "limit": error.limit, "count": error.count}
    return {}


def problem_response(
    request: Request[Any],
    kind: HttpProblem,
    detail: str,
    field_errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> Response:
    """`members`: the problem type's own extension members (RFC 9457 section 3.2)."""
    request_id = request_id_of(request)
    problem = Problem(
        type=problem_type(kind.code),
        title=kind.title,
        status=kind.status,
        detail=detail,
        code=kind.code,
        request_id=request_id,
        errors=[FieldProblem(field=e.field, message=e.message) for e in field_errors] or None,
        **(members or {}),
    )
    all_headers = {**kind.headers, **(headers or {}), REQUEST_ID_HEADER: request_id}
    body = problem.model_dump_json(exclude_none=True)
    return Response(body, kind.status, headers=all_headers, media_type=MEDIA_TYPE)


async def on_gateway_error(request: Request[Any], exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(request, exc)


async def on_http_exception(request: Request[Any], exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = ROUTING_PROBLEMS.get(exc.status_code) or HttpProblem(
        exc.status_code, "http_error", "Error"
    )
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_methods_on(request))}
    return problem_response(request, kind, _http_detail(request, exc), headers=headers)


def _methods_on(request: Request[Any]) -> list[str]:
    # Starlette's Allow names the methods of the first route of the path only; each endpoint is
    # a route of its own (web/endpoint.py), so a path served for GET and DELETE said GET, HEAD.
    routes = request.scope["router"].routes
    matching = [route for route in routes if route.matches(request.scope)[0] != Match.NONE]
    return sorted({method for route in matching for method in getattr(route, "methods", ())})


CLIENT_CLOSED_REQUEST = 499  # nginx's status for it: no client reads it, logs and metrics do


async def on_client_disconnect(request: Request[Any], exc: Exception) -> Response:
    # Mobile networks and load balancers' idle cuts: not a bug, and nobody reads the answer.
    logger.info("client closed the connection before its request was read: %s", request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def on_unexpected_error(request: Request[Any], exc: Exception) -> Response:
    # A bug: log it with its traceback for us, tell the client only that it happened and its id.
    logger.exception("unhandled error while serving %s %s", request.method, request.url.path)
    response = error_response(request, GatewayError("The gateway failed; this is a bug."))
    # Starlette's ServerErrorMiddleware sends this answer outside every middleware of ours, so
    # RequestObserver never sees it: while draining, it closes its connection here instead.
    drain = request.scope.get("state", {}).get("drain")
    if drain is not None and drain.started:
        response.headers["Connection"] = "close"
    return response


def _http_detail(request: Request[Any], exc: HTTPException) -> str:
    if exc.status_code == 404:
        path = request.url.path
        slash = " (paths end without a slash)" if len(path) > 1 and path.endswith("/") else ""
        return f"No route matches {path}{slash}"
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return str(exc.detail)
