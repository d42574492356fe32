"""The answers the server writes itself, before any request reaches the app: problem+json with a
request id, as the app's own, but built as bytes here (ops/ sits beneath web/ and Starlette).
A refusal of a request from an allowed browser origin carries the CORS headers the app's own
answers would (`cors_head`): a script reads the 503 and its Retry-After, not a network error."""

from __future__ import annotations

import http
import json
import re
from dataclasses import dataclass, replace
from functools import cache

from ..ids import new_request_id
from ..vocabulary import cors_answer_headers, problem_type

MEDIA_TYPE = b"application/problem+json"


@dataclass(frozen=True)
class EdgeProblem:
    status: int
    code: str
    detail: str
    retry_after_s: int | None = None


BAD_REQUEST = EdgeProblem(400, "invalid_http", "The request is not valid HTTP/1.1.")
_REASON = re.compile(r"[^A-Za-z0-9 '.,:;()_-]")
HEAD_TOO_LARGE = EdgeProblem(
    431, "headers_too_large", "The request line and headers are larger than {limit} bytes."
)
READ_TIMEOUT = EdgeProblem(
    408, "request_timeout", "The request did not arrive whole within {limit:g} s."
)
OVERLOADED = EdgeProblem(
    503, "overloaded", "The gateway holds its most connections ({limit}).", retry_after_s=1
)
TOO_MANY_IN_FLIGHT = EdgeProblem(
    503, "overloaded", "The gateway serves its most requests at once ({limit}).", retry_after_s=1
)


def bad_request(reason: str) -> EdgeProblem:
    """400 with what the parser disliked (llhttp's own fixed texts, e.g. "Duplicate
    Content-Length"), kept to plain characters: the detail is formatted and sent as is."""
    plain = _REASON.sub("", reason)[:100].strip().rstrip(".")
    detail = f"The request is not valid HTTP/1.1: {plain}." if plain else BAD_REQUEST.detail
    return replace(BAD_REQUEST, detail=detail)


class PrebuiltAnswer:
    """`answer_bytes(problem, limit, close=False)` built once, its request id filled in per
    answer: under overload this is what most requests get, so it must cost next to nothing."""

    MARK = "0" * 32  # where the request id goes: as long as one (new_request_id)

    def __init__(self, problem: EdgeProblem, limit: float) -> None:
        mark = self.MARK.encode()
        template = answer_bytes(problem, limit, close=False, request_id=self.MARK)
        self._parts = template.split(mark)
        head, body = template.split(b"\r\n\r\n", 1)
        self._head, self._body = head.split(mark), body.split(mark)

    def __call__(self, extra_head: bytes = b"") -> bytes:
        """`extra_head`: more header lines, each ending in CRLF."""
        request_id = new_request_id().encode()
        if not extra_head:  # most refusals: one join (577 ns, not 928, by timeit)
            return request_id.join(self._parts)
        head, body = request_id.join(self._head), request_id.join(self._body)
        return b"".join((head, b"\r\n", extra_head, b"\r\n", body))


def answer_bytes(
    problem: EdgeProblem,
    limit: float,
    close: bool = True,
    request_id: str | None = None,
    extra_head: bytes = b"",
) -> bytes:
    """The whole response; with `close`, `Connection: close`: the server closes after it."""
    request_id = request_id or new_request_id()
    body = _body(problem, problem.detail.format(limit=limit), request_id)
    head = [
        f"HTTP/1.1 {problem.status} {http.HTTPStatus(problem.status).phrase}",
        f"content-type: {MEDIA_TYPE.decode()}",
        f"content-length: {len(body)}",
        f"x-request-id: {request_id}",
        *(["connection: close"] if close else []),
    ]
    if problem.retry_after_s is not None:
        head.append(f"retry-after: {problem.retry_after_s}")
    return "\r\n".join([*head, ""]).encode("ascii") + extra_head + b"\r\n" + body


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


@cache  # called for allowed origins only: a few, each built once
def cors_head(origin: bytes) -> bytes:
    """`cors_answer_headers` as header lines, each ending in CRLF."""
    headers = cors_answer_headers(origin.decode("latin-1"))
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")
