"""The JSON line of a record is, byte for byte, the line the obvious formatter writes (the one
this formatter replaced, kept below as the reference), whichever of its cheap paths it takes;
and the access line's record is the record `Logger.info(..., extra=...)` would have made."""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import IntEnum
from http import HTTPStatus
from typing import Any

import pytest

from voice_gateway.ops.log_json import ACCESS_EXTRAS, JsonFormatter, access_line, utc_time
from voice_gateway.ops.logs import RequestIdFilter, current_request_id, log_fields
from voice_gateway.web.middleware.request_observer import Observation, access_logger, log_access

STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
ACCESS_KEYS = ["time", "level", "logger", "message", *ACCESS_EXTRAS]


def obvious_line(record: logging.LogRecord) -> str:
    """The reference: datetime's ISO time, every extra found by a scan of `vars(record)`, the
    standard library's encoder."""
    line: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    line.update(
        (key, value)
        for key, value in vars(record).items()
        if key not in STANDARD and key != "color_message"
    )
    if record.exc_info:
        line["exception"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        line["exception"] = record.exc_text
    return json.JSONEncoder(default=str, ensure_ascii=False).encode(line)


class Collected(logging.Handler):
    """The records as the log writer gets them: the request id stamped."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collected]:
    handler = Collected()
    level, propagate = access_logger.level, access_logger.propagate
    access_logger.addHandler(handler)
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False  # pytest's own capture need not see them
    yield handler
    access_logger.removeHandler(handler)
    access_logger.setLevel(level)
    access_logger.propagate = propagate


def access_record(collected: Collected, **changed: Any) -> logging.LogRecord:
    seen = Observation("POST", "/api/voice/session", "/api/voice/session", 201, 0.001234)
    token = current_request_id.set("req_4711")
    log_access(seen)
    current_request_id.reset(token)
    record = collected.records.pop()
    record.__dict__.update(changed)
    return record


def test_the_access_line_has_its_fields_in_order_as_the_obvious_formatter_writes_them(
    collected: Collected,
) -> None:
    record = access_record(collected)
    line = JsonFormatter().format(record)

    assert line == obvious_line(record)
    assert list(json.loads(line)) == ACCESS_KEYS
    assert json.loads(line)["request_id"] == "req_4711"


def test_the_access_line_is_written_out_rather_than_encoded(collected: Collected) -> None:
    record = access_record(collected)
    first_four = dict(list(json.loads(obvious_line(record)).items())[:4])

    assert access_line(first_four, vars(record)) == obvious_line(record)


@pytest.mark.parametrize(
    "changed",
    [
        {"path": '/a"quote\\back\nslash\x01 ünïcode ☃'},
        {"request_id": None},
        {"status": HTTPStatus.CREATED},
        {"status": True},
        {"duration_ms": math.nan},
        {"duration_ms": 5},
        {"method": b"POST"},
        {"route": None},
        {"msg": "%s %s %d %.2fms and more"},
    ],
    ids=repr,
)
def test_an_access_record_someone_changed_is_written_as_the_obvious_formatter_writes_it(
    collected: Collected, changed: dict[str, Any]
) -> None:
    record = access_record(collected, **changed)

    assert JsonFormatter().format(record) == obvious_line(record)


class Level(IntEnum):
    HIGH = 3


class Text(str):
    pass


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"room": "foundry_nate", "count": 3, "ok": True, "none": None, "ratio": 0.5},
        {"nested": {"a": [1, 2.5, None]}, "items": (1, 2), "level_enum": Level.HIGH},
        {"inf": math.inf, "big": 10**30, "object": object, "text": Text("t")},
        {"time": "an extra called time", "logger": "and logger", "exception": "and exception"},
        {"color_message": "dropped", "after": "kept"},
        {"request_id": "given-by-the-caller"},
    ],
    ids=repr,
)
def test_an_ordinary_record_is_written_as_the_obvious_formatter_writes_it(
    extra: dict[str, Any],
) -> None:
    logger = logging.getLogger("voice_gateway.test")
    record = logger.makeRecord(
        logger.name, logging.WARNING, "f.py", 1, "room %s: %d%%", ("r", 5), None, extra=extra
    )
    RequestIdFilter().filter(record)

    assert JsonFormatter().format(record) == obvious_line(record)


def test_a_record_with_a_traceback_is_written_as_the_obvious_formatter_writes_it() -> None:
    try:
        raise ValueError("the cause")
    except ValueError as exc:
        raised = logging.makeLogRecord({"msg": "failed", "exc_info": (ValueError, exc, None)})
    rendered = logging.makeLogRecord({"msg": "failed", "exc_text": "Traceback: ..."})

    for record in (raised, rendered):
        assert JsonFormatter().format(record) == obvious_line(record)


def test_a_record_another_formatter_has_rendered_is_written_as_before() -> None:
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("you",), "extra_field": 1})
    logging.Formatter("%(asctime)s %(message)s").format(record)  # adds message and asctime

    assert JsonFormatter().format(record) == obvious_line(record)


def test_records_of_many_shapes_are_each_written_with_their_own_extras() -> None:
    records = [logging.makeLogRecord({"msg": "m", f"field_{n}": n}) for n in range(600)]

    for record in records + records[:10]:
        assert JsonFormatter().format(record) == obvious_line(record)


def test_the_time_is_the_one_datetime_gives_down_to_its_rounding() -> None:
    rng = random.Random(12)
    whole = [float(rng.randrange(0, 4_000_000_000)) for _ in range(200)]
    edges = [0.0004995, 0.0005, 0.0009999996, 0.9994999, 0.9995, 0.9999994, 0.9999996, 0.9999999]
    times = [rng.uniform(0, 4e9) for _ in range(5_000)]
    times += [second + edge for second in whole for edge in edges]
    times += [-0.5, -1.0000004, -1e-7, 1.5, 1.5]  # and a second asked twice, then again

    for created in times:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert utc_time(created) == expected, created


def test_the_access_record_is_the_one_logger_info_makes(
    collected: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "_srcfile", None)  # as configure_logging has records made
    fields = {"method": "GET", "status": 200}
    log_fields(access_logger, logging.INFO, "%s %d", ("GET", 200), fields)
    access_logger.info("%s %d", "GET", 200, extra=fields)

    lean, made = (vars(record) for record in collected.records)
    times = {"created", "msecs", "relativeCreated"}
    assert list(lean) == list(made)
    assert {k: v for k, v in lean.items() if k not in times} == {
        k: v for k, v in made.items() if k not in times
    }


def test_an_access_line_below_the_loggers_level_is_not_made(collected: Collected) -> None:
    access_logger.setLevel(logging.WARNING)

    log_access(Observation("GET", "/healthz", "/healthz", 200, 0.001))

    assert collected.records == []


def test_where_logging_is_someone_elses_the_access_record_names_its_caller(
    collected: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    # logging's own default, which configure_logging turns off: records name their caller
    monkeypatch.setattr(logging, "_srcfile", os.path.normcase(logging.__file__))

    log_access(Observation("GET", "/healthz", "/healthz", 200, 0.001))

    record = collected.records.pop()
    assert (record.filename, record.funcName) == ("request_observer.py", "log_access")
    assert vars(record)["status"] == 200
