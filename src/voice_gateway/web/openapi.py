"""The OpenAPI 3.1 document, generated from the same pydantic models that validate and respond."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .. import __version__
from ..vocabulary import REQUEST_ID_PATTERN, ROOM_NAME_PATTERN
from .middleware.request_id import HEADER as REQUEST_ID
from .models import (
    Problem,
)

PROBLEM_STATUSES = {
    400: "The body is not a JSON object in UTF-8, names a key twice in one object, or holds a "
    "number of over 4,300 digits",
    401: "No or bad credentials",
    403: "The caller may not act for that user or session",
    404: "No such session",
    409: "The session ended: the Idempotency-Key names an ended one (use a new key), or it "
    "ended while the create waited for its agent",
    413: "The body is larger than VOICE_GATEWAY_MAX_BODY_BYTES",
    415: "The Content-Type of a body is not JSON (application/json or any +json; none is read as "
    "JSON), or names a charset other than UTF-8",
    422: "A field is invalid; `errors` names each one",
    429: "Too many requests (`rate_limited`), or a session cap is full (`concurrency_limit`: the "
    "body names the `cap`, its `limit` and its `count` of live sessions); see Retry-After",
    502: "LiveKit answered an error",
    503: "LiveKit (or the identity provider's JWKS, or the Redis holding the session counts) is "
    "unreachable; or `agent_unavailable`: the agent's job failed (wait_for_agent), the session "
    "was ended; or `shutting_down`: the gateway stopped before it finished the request (retry, "
    "with the same Idempotency-Key if it had one; see Retry-After)",
    504: "LiveKit did not answer within the deadline; or `agent_timeout`: the agent did not "
    "join within VOICE_GATEWAY_AGENT_WAIT_S (wait_for_agent), the session was ended",
}
PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": 'A Bearer challenge (RFC 6750), e.g. `Bearer realm="voice-gateway"`'},
    429: {"Retry-After": "Whole seconds until another request may succeed"},
}
HEADER_PATTERNS = {"Retry-After": "^[0-9]+$"}
LIVEKIT = (502, 503, 504)
BODY = (400, 413, 415, 422)
# Every operation that needs credentials can also answer these (see access.py).
CREDENTIALED = (401, 429, 503)
BEARER = "bearerAuth"


@dataclass(frozen=True)
class HeaderParam:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    ok_status: int
    ok_model: type[BaseModel] | None
    request_model: type[BaseModel] | None = None
    problems: tuple[int, ...] = ()
    path_params: tuple[str, ...] = ()
    ok_headers: dict[str, str] = field(default_factory=dict)
    ok_text_type: str | None = None  # a body that is text, not a model (the metrics)
    ok_json_schema: dict[str, Any] | None = None  # a JSON body that is no model (this document)
    public: bool = False  # needs no credentials (web/middleware/access.py lets it through)
    header_params: tuple[HeaderParam, ...] = ()
    request_media_type: str = "application/json"
    request_required: bool = True
    description: str | None = None
    query_model: type[BaseModel] | None = None  # each field one query parameter


NO_STORE_HEADER = {"Cache-Control": "Always `no-store`: the body carries a bearer token"}
IDEMPOTENCY_KEY = HeaderParam(
    "Idempotency-Key",
    "Repeating a request with the same key (and the same caller) answers with the same session "
    "and a fresh token; the same key with another body is a 422 `idempotency_key_reused`, and "
    "after the session was ended with DELETE a 409 `session_ended`",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
)
# Every answer carries the request's id (request_id.py); a client may offer its own.
REQUEST_ID_PARAM = HeaderParam(
    REQUEST_ID,
    "An id for this request, echoed in the answer's X-Request-ID, its problem body and the logs. "
    "One outside 1-128 characters of A-Z a-z 0-9 . _ : / + = - is replaced by a fresh one, not "
    "refused.",
    {"type": "string"},
)
REQUEST_ID_HEADER = {
    REQUEST_ID: {
        "description": "The request's id: the one the client sent when sane, else a fresh one",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    }
}


def build_openapi(operations: Sequence[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voice-gateway",
            "version": __version__,
            "description": "Hands out LiveKit voice sessions.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(operations),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A service key, or the app's own end-user JWT",
                }
            },
        },
    }


def _schemas(operations: Sequence[Operation]) -> dict[str, Any]:
    inputs = {op.request_model for op in operations if op.request_model}
    outputs = {op.ok_model for op in operations if op.ok_model} | {Problem}
    validation: JsonSchemaMode = "validation"
    serialization: JsonSchemaMode = "serialization"
    pairs = [(m, validation) for m in inputs] + [(m, serialization) for m in outputs]
    _, schema = models_json_schema(
        sorted(pairs, key=lambda p: p[0].__name__), ref_template="#/components/schemas/{model}"
    )
    return dict(schema.get("$defs", {}))


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"summary": op.summary, "responses": _responses(op)}
    spec["security"] = [] if op.public else [{BEARER: []}]
    if op.description:
        spec["description"] = op.description
    parameters = [_path_param(name) for name in op.path_params]
    parameters += _query_params(op.query_model) if op.query_model else []
    parameters += [_header_param(header) for header in (*op.header_params, REQUEST_ID_PARAM)]
    spec["parameters"] = parameters
    if op.request_model:
        spec["requestBody"] = {
            "required": op.request_required,
            "content": {op.request_media_type: {"schema": _ref(op.request_model)}},
        }
    return spec


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": field.pop("description", ""),
            "schema": _without_null(field),
        }
        for name, field in schema["properties"].items()
    ]


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    # An optional parameter is one left out, never a null: a query string cannot say null.
    kept = {k: v for k, v in field.items() if k != "title" and (k, v) != ("default", None)}
    choices = [choice for choice in kept.pop("anyOf", []) if choice.get("type") != "null"]
    return {**kept, **choices[0]} if len(choices) == 1 else kept


def _header_param(header: HeaderParam) -> dict[str, Any]:
    return {
        "name": header.name,
        "in": "header",
        "required": False,
        "description": header.description,
        "schema": header.schema,
    }


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": op.summary}
    if op.ok_model:
        ok["content"] = {"application/json": {"schema": _ref(op.ok_model)}}
    if op.ok_text_type:
        ok["content"] = {op.ok_text_type: {"schema": {"type": "string"}}}
    if op.ok_json_schema:
        ok["content"] = {"application/json": {"schema": op.ok_json_schema}}
    ok["headers"] = {
        **REQUEST_ID_HEADER,
        **{
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in op.ok_headers.items()
        },
    }
    responses = {str(op.ok_status): ok}
    for status in sorted(set(op.problems) | (set() if op.public else set(CREDENTIALED))):
        responses[str(status)] = _problem(status)
    return responses


def _problem(status: int) -> dict[str, Any]:
    problem: dict[str, Any] = {
        "description": PROBLEM_STATUSES[status],
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
        "headers": {
            **REQUEST_ID_HEADER,
            **{
                name: {"description": text, "required": True, "schema": _header_schema(name)}
                for name, text in PROBLEM_HEADERS.get(status, {}).items()
            },
        },
    }
    return problem


def _header_schema(name: str) -> dict[str, str]:
    pattern = HEADER_PATTERNS.get(name)
    return {"type": "string", "pattern": pattern} if pattern else {"type": "string"}


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ROOM_NAME_PATTERN},
        "description": "A session's room name, as POST /api/voice/session returned it",
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}
