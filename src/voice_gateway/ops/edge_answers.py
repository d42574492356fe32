"""The answers the server writes itself, before any request reaches the app: problem+json with a
request id, as the app's own, but built as bytes here (ops/ sits beneath web/ and Starlette)."""

from __future__ import annotations

import http
import json
from dataclasses import dataclass

from ..ids import new_request_id
from ..vocabulary import problem_type

MEDIA_TYPE = b"application/problem+json"


@dataclass(frozen=True)
class EdgeProblem:
    status: int
    code: str
    detail: str
    retry_after_s: int | None = None


BAD_REQUEST = EdgeProblem(400, "invalid_http", "The request is not valid HTTP/1.1.")
HEAD_TOO_LARGE = EdgeProblem(
    431, "headers_too_large", "The request line and headers are larger than {limit} bytes."
)
READ_TIMEOUT = EdgeProblem(
    408, "request_timeout", "The request did not arrive whole within {limit:g} s."
)
OVERLOADED = EdgeProblem(
    503, "overloaded", "The gateway holds its most connections ({limit}).", retry_after_s=1
)


def answer_bytes(problem: EdgeProblem, limit: float) -> bytes:
    """The whole response, `Connection: close` included: the server closes after it."""
    request_id = new_request_id()
    body = _body(problem, problem.detail.format(limit=limit), request_id)
    head = [
        f"HTTP/1.1 {problem.status} {http.HTTPStatus(problem.status).phrase}",
        f"content-type: {MEDIA_TYPE.decode()}",
        f"content-length: {len(body)}",
        f"x-request-id: {request_id}",
        "connection: close",
    ]
    if problem.retry_after_s is not None:
        head.append(f"retry-after: {problem.retry_after_s}")
    return "\r\n".join([*head, "", ""]).encode("ascii") + body


def _body(problem: EdgeProblem, detail: str, request_id: str) -> bytes:
    fields = {
        "type": problem_type(problem.code),
        "title": http.HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": detail,
        "code": problem.code,
        "request_id": request_id,
    }
    return json.dumps(fields).encode()
