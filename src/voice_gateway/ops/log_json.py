"""A log record as one JSON line, rendered by the log writer thread for every line the process
writes, so each step here is the cheap way to the same bytes the obvious way gives:
`datetime.fromtimestamp(...).isoformat()`, the caller's extras found in `vars(record)`, and
`json.JSONEncoder(default=str, ensure_ascii=False).encode`. What that cost, and what this costs:
bench/README.md, measured decisions (tests/ops/test_log_json.py holds the two ways equal).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from json.encoder import encode_basestring as _quoted
from typing import Any

# What every LogRecord has; anything else on a record was passed by the caller as `extra`.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# uvicorn adds a colourised copy of some messages; the plain message is enough.
DROPPED_EXTRAS = frozenset({"color_message"})
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # one, not one per line
# Records come in few shapes (their attribute names in order): an access line's, a plain line's,
# uvicorn's. The extras of each shape are found once; the bound is for a caller whose extras vary.
_EXTRAS_OF_SHAPE: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_SHAPES = 256
# The extras of an access line (web/middleware/request_observer.py), in the order it sets them.
ACCESS_EXTRAS = ("method", "path", "route", "status", "duration_ms", "request_id")
# The last second rendered, and its text: one tuple, read and replaced whole, so two threads
# formatting at once need no lock.
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras (the request id among them),
    exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": utc_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        attributes = vars(record)
        keys = extra_keys(attributes)
        access = keys == ACCESS_EXTRAS and not (record.exc_info or record.exc_text)
        if access and (rendered := access_line(line, attributes)):
            return rendered
        fields: dict[str, Any] = line
        for key in keys:
            fields[key] = attributes[key]
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        return _ENCODER.encode(fields)


def utc_time(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the date
    and time of day rendered once a second (datetime's way was a third of a line's formatting).
    Rounded as datetime rounds a timestamp: to the microsecond, half to even, then truncated."""
    global _second
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    second, text = _second
    if second != whole:
        second = int(whole)
        text = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
        _second = (second, text)
    return f"{text}.{micros // 1000:03d}+00:00"


def extra_keys(attributes: dict[str, Any]) -> tuple[str, ...]:
    """The attributes no LogRecord has of itself, in the order they were set: what `vars(record)`
    holds beyond the standard ones, found once per shape of record instead of on every line."""
    shape = tuple(attributes)
    keys = _EXTRAS_OF_SHAPE.get(shape)
    if keys is None:
        if len(_EXTRAS_OF_SHAPE) >= _MAX_SHAPES:
            _EXTRAS_OF_SHAPE.clear()
        keys = _EXTRAS_OF_SHAPE[shape] = tuple(
            key for key in shape if key not in RECORD_ATTRIBUTES and key not in DROPPED_EXTRAS
        )
    return keys


def access_line(line: dict[str, str], attributes: dict[str, Any]) -> str | None:
    """The line the encoder gives for an access record (`line` holding its first four fields),
    written out: one per request, it skips the encoder's per-value type dispatch (2.9 -> 1.1 µs).
    None when a value is not of the type `log_access` gives it (someone changed the record): the
    encoder then renders it, as it renders every other line."""
    status, duration_ms = attributes["status"], attributes["duration_ms"]
    if type(status) is not int or type(duration_ms) is not float or not math.isfinite(duration_ms):
        return None
    try:  # the time needs no escaping: utc_time writes digits and -:T.+ only
        return (
            f'{{"time": "{line["time"]}", "level": {_quoted(line["level"])}, '
            f'"logger": {_quoted(line["logger"])}, "message": {_quoted(line["message"])}, '
            f'"method": {_quoted(attributes["method"])}, "path": {_quoted(attributes["path"])}, '
            f'"route": {_quoted(attributes["route"])}, "status": {status}, '
            f'"duration_ms": {duration_ms!r}, "request_id": {_quoted(attributes["request_id"])}}}'
        )
    except TypeError:  # a string that is not a str
        return None
