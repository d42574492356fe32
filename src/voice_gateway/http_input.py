"""Turning a request body into a validated model, with errors that name what was wrong."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from .errors import FieldError, InvalidRequest, MalformedRequest

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body, parse_constant=_reject_constant) if body else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"The body is not valid JSON: {_json_reason(exc)}") from exc
    if not isinstance(data, dict):
        raise MalformedRequest("The body must be a JSON object")
    return data


def validate_as(
    model: type[ModelT], data: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> ModelT:
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        errors = [FieldError(_field_name(e["loc"]), e["msg"]) for e in exc.errors()]
        names = ", ".join(dict.fromkeys(e.field for e in errors))
        raise InvalidRequest(f"Invalid fields: {names}", field_errors=errors) from exc


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{name} is not a JSON value")


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc) if isinstance(exc, ValueError) else "the body is not UTF-8"


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"
