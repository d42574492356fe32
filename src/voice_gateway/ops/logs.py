"""Log lines: JSON for machines under `serve`, one readable line each under `dev`.

Standard-library logging on purpose: uvicorn, aiohttp and the LiveKit SDK already log through it,
so one handler with one formatter shapes every line the process writes, ours and theirs alike.
Each line carries the id of the request it was written for (`current_request_id`, set by the
outermost middleware, web/middleware/request_observer.py).
Lines are written by a thread of their own, so a slow reader of stderr never blocks the event loop;
it wakes on a timer and writes a batch, so logging a line never wakes a thread (see LogWriter).
"""

from __future__ import annotations

import copy
import logging
import logging.handlers
import queue
import sys
import threading
from contextvars import ContextVar
from typing import Any, Literal, TextIO

from .log_json import JsonFormatter

LogFormat = Literal["json", "text"]
# The id of the request being served, for every log line written on its behalf. It is never
# reset: uvicorn serves each request in a task of its own, and the id must outlive this
# middleware for the lines written after it (the 500 handler, uvicorn's own error line).
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
# Arguments no one can change after the call: a record holding only these is queued as it is.
_IMMUTABLE_ARGS = (str, int, float, bool, type(None))


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served, or "-" outside requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id.get() or "-"
        return True


class _HandOff(logging.handlers.QueueHandler):
    """Queues records for the writer thread with the request id stamped (its filter runs here,
    in the request's context) and the message and traceback rendered, the rest left as fields.

    A record whose arguments are all immutable (an access line's are) goes as it is: the writer
    renders the same message, and no handler beside this one sees a changed record. The copy and
    the rendering here were a fifth of an access line's cost on the loop."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info is None and _only_immutable(record.args):
            return record
        record = copy.copy(record)
        record.msg = record.message = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def _only_immutable(args: Any) -> bool:
    if not isinstance(args, tuple):
        return args is None
    return all(isinstance(arg, _IMMUTABLE_ARGS) for arg in args)


def log_fields(
    logger: logging.Logger, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any]
) -> None:
    """`logger.log(level, msg, *args, extra=fields)` for a line logged on every request: the same
    record (as `configure_logging` has records made: no caller's frame), without what
    `Logger.makeRecord` checks of each name in `extra` (that it replaces no attribute of the
    record, which a caller's fixed names cannot). A fifth of an access line's cost on the loop."""
    if logging._srcfile is not None:  # an embedding app's logging: its lines may name the caller
        logger.log(level, msg, *args, extra=fields, stacklevel=2)
        return
    if not logger.isEnabledFor(level):
        return
    record = logging.getLogRecordFactory()(
        logger.name, level, "(unknown file)", 0, msg, args, None, "(unknown function)", None
    )
    record.__dict__.update(fields)
    logger.handle(record)


def log_handler(
    log_format: LogFormat, stream: TextIO | None = None, batched: bool = False
) -> logging.Handler:
    """`batched`: lines are written when the handler is flushed (`LogWriter` does after each
    batch), not one write per line."""
    kind = BatchedStreamHandler if batched else logging.StreamHandler
    handler = kind(stream or sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    return handler


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Formats each record as it is handled and writes them all at the next `flush()`, in one
    write: stderr is line-buffered, so a StreamHandler makes a system call per line, which
    under load was most of the writer thread's time (bench/README.md, measured decisions)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        # The newest line's record, for handleError should a write fail: the line it reports.
        self._last = logging.makeLogRecord({"msg": "(no line handled yet)"})

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
            self._last = record
        except Exception:  # as StreamHandler.emit: a bad record must not stop the others
            self.handleError(record)

    def flush(self) -> None:
        """The lines formatted since the last flush, in one write; nothing to do without any
        (logging's shutdown flushes every handler, its stream perhaps closed by then). A write
        that fails (a full disk, a pipe that would block) is reported, not tried again: stderr's
        own buffer has taken what it could and writes it with the next lines, so a second try
        wrote them twice (tests/ops/test_logs.py)."""
        self.acquire()
        try:
            lines, self._lines = self._lines, []
            if lines:
                self.stream.write("".join(lines))
                self.stream.flush()
        except Exception:
            self.handleError(self._last)
        finally:
            self.release()


class LogWriter:
    """Writes queued records every `interval_s`, in batches.

    The standard QueueListener blocks in `get()`, so every line logged on the loop wakes its thread,
    which then competes with the loop for the GIL: a measurable cost per request for one access
    line (see bench/README.md, measured decisions). Polling costs one wake-up per interval instead.
    """

    def __init__(
        self,
        records: queue.SimpleQueue[logging.LogRecord],
        handler: logging.Handler,
        interval_s: float = 0.05,
    ) -> None:
        self._records = records
        self._handler = handler
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Writes out what is still queued, then ends the thread."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._write_queued()
        self._write_queued()

    def _write_queued(self) -> None:
        while True:
            try:
                record = self._records.get_nowait()
            except queue.Empty:
                break
            self._handler.handle(record)
        self._handler.flush()


def configure_logging(log_format: LogFormat, level: str, stream: TextIO | None = None) -> LogWriter:
    """Route every logger of the process (ours, uvicorn's, the SDK's) to one writer thread.
    The caller stops the returned listener last, so it writes out what is still queued."""
    _record_only_what_lines_show()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    hand_off = _HandOff(records)
    hand_off.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(hand_off)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Our access line replaces uvicorn's: it has the request id and the latency.
    logging.getLogger("uvicorn.access").disabled = True
    writer = LogWriter(records, log_handler(log_format, stream, batched=True))
    writer.start()
    return writer


def _record_only_what_lines_show() -> None:
    """No line shows the thread, the process or the source line, so records do not look them up
    (the logging HOWTO's "Optimization"): a third of an access line's cost on the loop, where
    `LogRecord.__init__` was the largest part (bench/README.md, measured decisions)."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False  # the asyncio task's name
    logging._srcfile = None  # no caller's frame walked for filename, lineno, funcName
