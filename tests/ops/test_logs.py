"""Log lines: one access line per request, the request id on every line written for a request,
JSON or readable text, and nothing secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.gateway import SESSION_BODY, create_session, make_settings, running_gateway
from tests.support.keys import API_SECRET
from tests.support.log_capture import CapturedLogs, captured_logs
from voice_gateway.ops.logs import configure_logging, current_request_id, log_handler
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn
from voice_gateway.web.app import create_app


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    with captured_logs() as captured:
        yield captured


async def test_each_request_writes_one_access_line_with_its_fields(
    logs: CapturedLogs, settings: Settings
) -> None:
    async with running_gateway(settings) as client:
        response = await create_session(client)

    (line,) = logs.from_logger("voice_gateway.access")
    assert line["method"] == "POST"
    assert line["path"] == "/api/voice/session"
    assert line["route"] == "/api/voice/session"
    assert line["status"] == 201
    assert line["duration_ms"] > 0
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["level"] == "info"


async def test_the_access_line_echoes_the_callers_request_id(
    logs: CapturedLogs, client: httpx.AsyncClient
) -> None:
    await client.get("/healthz", headers={"X-Request-ID": "trace-4711"})

    (line,) = logs.from_logger("voice_gateway.access")
    assert line["request_id"] == "trace-4711"


async def test_the_access_line_leaves_out_the_query_string(
    logs: CapturedLogs, client: httpx.AsyncClient
) -> None:
    await client.get("/healthz", params={"access_token": "query-credential"})

    (line,) = logs.from_logger("voice_gateway.access")
    assert line["path"] == "/healthz"
    assert "query-credential" not in logs.text


async def test_a_failed_request_is_logged_with_its_status(
    logs: CapturedLogs, client: httpx.AsyncClient, standin: StandIn
) -> None:
    standin.refuse_connections()

    await client.get("/readyz")

    (line,) = logs.from_logger("voice_gateway.access")
    assert line["status"] == 503


async def test_lines_written_for_a_request_carry_its_id(
    logs: CapturedLogs, client: httpx.AsyncClient, standin: StandIn
) -> None:
    # CreateRoom fails, so the request schedules a clean-up in the background; that clean-up
    # logs (at debug) that there was no room to delete. It is work done for this request.
    standin.fail_next(status=500, code="internal", times=1)

    response = await create_session(client)
    cleanup = await _wait_for_line(logs, "voice_gateway.service")

    assert response.status_code == 502
    assert cleanup["request_id"] == response.headers["X-Request-ID"]


async def test_lines_outside_any_request_carry_no_request_id(
    logs: CapturedLogs, settings: Settings
) -> None:
    async with running_gateway(settings):
        pass

    (stopped,) = logs.from_logger("voice_gateway.app")
    assert stopped["request_id"] == "-"


async def test_the_text_format_is_one_readable_line_per_request(settings: Settings) -> None:
    with captured_logs("text") as logs:
        async with running_gateway(settings) as client:
            response = await client.get("/healthz")

    request_id = response.headers["X-Request-ID"]
    (line,) = [line for line in logs.text.splitlines() if "voice_gateway.access" in line]
    assert f"[{request_id}] GET /healthz 200 " in line
    assert line.endswith("ms")


async def test_a_newline_in_the_path_cannot_forge_a_log_line(settings: Settings) -> None:
    with captured_logs("text") as logs:
        async with running_gateway(settings) as client:
            await client.get("/nowhere%0AINFO forged line")

    (line,) = [line for line in logs.text.splitlines() if "voice_gateway.access" in line]
    assert "/nowhere%0AINFO%20forged%20line 404" in line


async def test_no_secret_reaches_the_logs(logs: CapturedLogs, standin: StandIn) -> None:
    caller_key = "caller-key-that-must-stay-out-of-logs"
    settings = make_settings(standin, api_keys=[caller_key])
    headers = {"Authorization": f"Bearer {caller_key}"}
    async with running_gateway(settings) as client:
        created = await client.post("/api/voice/session", headers=headers, json=SESSION_BODY)
        await client.get("/readyz", headers=headers)
        await client.post("/api/voice/session", headers=headers, json={"user_id": 1})

    token = created.json()["token"]
    assert logs.lines(), "the gateway wrote no lines at all"
    for secret in (API_SECRET, caller_key, token):
        assert secret not in logs.text


async def _wait_for_line(logs: CapturedLogs, logger: str) -> dict[str, object]:
    with anyio.fail_after(5):
        # A log buffer has no event to wait on; poll it.
        while not (lines := logs.from_logger(logger)):  # noqa: ASYNC110
            await anyio.sleep(0.02)
    return lines[0]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging rewires the process's loggers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn_access = logging.getLogger("uvicorn.access")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    uvicorn_access.disabled = False


def test_lines_go_through_the_writer_thread_with_id_and_traceback(
    restored_logging: None,
) -> None:
    stream = io.StringIO()
    writer = configure_logging("json", "info", stream)
    token = current_request_id.set("req-in-flight")
    try:
        raise ValueError("the cause")
    except ValueError:
        logging.getLogger("voice_gateway.test").exception("failed with %d%%", 50)
    finally:
        current_request_id.reset(token)
    writer.stop()

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "failed with 50%"
    assert line["request_id"] == "req-in-flight"
    assert "ValueError: the cause" in line["exception"]


def test_uvicorns_own_access_log_is_replaced(restored_logging: None) -> None:
    stream = io.StringIO()
    writer = configure_logging("json", "info", stream)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET / HTTP/1.1" 200')
    writer.stop()

    assert stream.getvalue() == ""


class RawFailingOnce(io.RawIOBase):
    """A file descriptor whose first write fails, as on a full disk or a pipe that would block."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.failed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if not self.failed:
            self.failed = True
            raise OSError("no space left on device")
        self.written += bytes(data)
        return len(data)


def messages(written: str) -> list[str]:
    return [json.loads(text)["message"] for text in written.splitlines()]


def handle_line(handler: logging.Handler, message: str) -> None:
    handler.handle(logging.makeLogRecord({"msg": message, "levelno": 20, "levelname": "INFO"}))


def test_a_line_whose_write_failed_comes_out_once_with_the_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = RawFailingOnce()
    stderr_like = io.TextIOWrapper(io.BufferedWriter(raw), line_buffering=True)
    handler = log_handler("json", stderr_like, batched=True)
    handle_line(handler, "first, its write failed")
    handler.flush()
    handle_line(handler, "second")
    handler.flush()

    assert messages(raw.written.decode()) == ["first, its write failed", "second"]
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


class FlushFailingOnce(io.StringIO):
    """A stream that takes a write but fails its first flush, as a full pipe would."""

    failed = False

    def flush(self) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("resource temporarily unavailable")


def test_lines_a_failed_flush_left_in_the_streams_buffer_are_not_written_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = FlushFailingOnce()
    handler = log_handler("json", stream, batched=True)
    handle_line(handler, "first, its flush failed")
    handler.flush()
    handle_line(handler, "second")
    handler.flush()

    assert messages(stream.getvalue()) == ["first, its flush failed", "second"]
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


def test_a_line_that_cannot_be_formatted_does_not_stop_the_others(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    writer = configure_logging("json", "info", stream)
    lines = logging.getLogger("voice_gateway.test")
    lines.info("a format that does not fit: %d", "not a number")
    lines.info("written: %s", "after it")
    writer.stop()

    assert messages(stream.getvalue()) == ["written: after it"]
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


async def broken_handler(request: Request) -> Response:
    raise RuntimeError("a bug")


async def test_a_bug_is_logged_with_its_request_id_and_a_500_access_line(
    logs: CapturedLogs, settings: Settings
) -> None:
    app = create_app(settings)
    app.router.routes.append(Route("/broken", broken_handler))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            await client.get("/broken", headers={"X-Request-ID": "bug-2"})

    (error,) = [line for line in logs.lines() if line["level"] == "error"]
    (access,) = logs.from_logger("voice_gateway.access")
    assert error["request_id"] == "bug-2"
    assert "RuntimeError: a bug" in error["exception"]
    assert access["request_id"] == "bug-2"
    assert access["status"] == 500
