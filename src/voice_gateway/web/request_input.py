"""Turning a request body into a validated model, with errors that name what was wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..errors import FieldError, InvalidRequest, MalformedRequest
from ..vocabulary import ROOM_NAME_ALPHABET, ROOM_NAME_PATTERN

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)  # with fullmatch: no trailing newline slips by

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_json_object(request: Request[Any]) -> dict[str, Any]:
    body = await request.body()
    try:
        # NaN, Infinity and 1e999 parse as floats here; the models refuse non-finite numbers
        # with a 422 that names the field, which says more than "not JSON" would.
        data = json.loads(body) if body else {}
    except RecursionError:
        raise MalformedRequest("The body is not valid JSON: it is nested too deeply") from None
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


def room_name_of(request: Request[Any]) -> str:
    """The `{room_name}` of the path, only if it could be a room name the gateway made."""
    room_name = str(request.path_params["room_name"])
    if not _ROOM_NAME.fullmatch(room_name):
        problem = FieldError("room_name", f"must be {ROOM_NAME_ALPHABET}")
        raise InvalidRequest("Invalid path parameter: room_name", field_errors=[problem])
    return room_name


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc) if isinstance(exc, ValueError) else "the body is not UTF-8"


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"
