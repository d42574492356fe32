"""Turning a request body into a validated model, with errors that name what was wrong."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..errors import FieldError, InvalidRequest, MalformedRequest, UnsupportedMediaType
from ..vocabulary import ROOM_NAME_ALPHABET, ROOM_NAME_PATTERN

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)  # with fullmatch: no trailing newline slips by

ModelT = TypeVar("ModelT", bound=BaseModel)


class DuplicateKey(ValueError):
    """A JSON object names one key twice: parsers differ on which value counts (first, last)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        twice = _first_repeated(key for key, _ in pairs)
        raise DuplicateKey(f"the key {json.dumps(twice[:64])} appears more than once in an object")
    return data


def _first_repeated(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no key repeats")


# One decoder: json.loads given a hook builds a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


async def read_json_object(request: Request[Any]) -> dict[str, Any]:
    body = await request.body()
    if not body:  # nothing to misread, whatever it says it is (TokenSource may send none)
        return {}
    _check_media_type(request.headers.get("content-type"))
    try:
        # NaN, Infinity and 1e999 parse as floats here; the models refuse non-finite numbers
        # with a 422 that names the field, which says more than "not JSON" would.
        # UTF-8 only (RFC 8259 8.1; json.loads would also take UTF-16 and UTF-32), a BOM allowed.
        data = _DECODER.decode(body.decode("utf-8-sig"))
    except RecursionError:
        raise MalformedRequest("The body is not valid JSON: it is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"The body is not valid JSON: {_json_reason(exc)}") from exc
    if not isinstance(data, dict):
        raise MalformedRequest("The body must be a JSON object")
    return data


def _check_media_type(content_type: str | None) -> None:
    """JSON, or no Content-Type at all; a body that says it is a form or text is not read as
    JSON (a browser sends those cross-origin without a preflight)."""
    media_type, _, parameters = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"The body is JSON, so send Content-Type: application/json, not "
            f"{json.dumps(media_type[:64])} (curl: --json, or -H 'Content-Type: application/json')"
        )
    if _charset_of(parameters) not in _UTF8_CHARSETS:
        raise UnsupportedMediaType("The body must be UTF-8: send charset=utf-8, or no charset")


_UTF8_CHARSETS = (None, "utf-8", "utf8", "us-ascii")  # ASCII is UTF-8 too


def _charset_of(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def validate_as(
    model: type[ModelT], data: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> ModelT:
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        errors = [FieldError(_field_name(e["loc"]), e["msg"]) for e in exc.errors()]
        names = ", ".join(dict.fromkeys(e.field for e in errors))
        raise InvalidRequest(f"Invalid fields: {names}", field_errors=errors) from exc


def query_of(request: Request[Any]) -> dict[str, str]:
    """The query's parameters, each given once: of two, which one the client meant is a guess."""
    params = request.query_params
    counts = Counter(name for name, _ in params.multi_items())
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        problems = [FieldError(name[:64], "must be given once") for name in twice]
        raise InvalidRequest(f"Invalid query: {', '.join(twice)[:200]}", field_errors=problems)
    return dict(params)


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
    if isinstance(exc, UnicodeDecodeError):
        return f"the body is not UTF-8 (byte {exc.start})"
    if "integer string conversion" in str(exc):
        # CPython's own text ends "use sys.set_int_max_str_digits()": advice to the server.
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return str(exc)  # DuplicateKey's, or another ValueError's


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"
