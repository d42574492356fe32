"""Log lines as the gateway writes them: the real handler (formatter and request-id filter) on
the root logger, into a buffer a test can read back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from voice_gateway.ops.logs import LogFormat, log_handler


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def from_logger(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == name]


@contextmanager
def captured_logs(
    log_format: LogFormat = "json", level: int = logging.DEBUG
) -> Iterator[CapturedLogs]:
    stream = io.StringIO()
    handler = log_handler(log_format, stream)
    # The test's own httpx client logs every call it makes; those lines are not the gateway's.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield CapturedLogs(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
