"""uvicorn's request-response cycle, with an answer framed by Content-Length written at once.

uvicorn writes the status line and headers on `http.response.start` and the body on
`http.response.body`: two system calls and two TCP segments for every answer, though the gateway
always knows its whole body before it starts (a Starlette `Response`, Content-Length set). Here
the head of every answer that is not chunked (Content-Length given, or HEAD, 204, 304) is held
until its first body message and written with it, in one write. A chunked answer (a stream: its
head may be wanted before the first chunk) is written as uvicorn writes it. Everything else is
uvicorn 0.54's `RequestResponseCycle.send`, line for line: the same header checks (no CRLF
injection), the same framing errors, keep-alive, `Connection: close`, flow control.
tests/ops/test_edge_cycle.py holds the two to the same bytes. The one difference: a client gone
between an answer's start and its body gets nothing, where uvicorn had sent it the head.
"""

from __future__ import annotations

from collections.abc import Iterable

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

NO_BODY_STATUSES = (204, 304)


class EdgeCycle(RequestResponseCycle):
    held_head: bytes | None = None  # set on the instance while held

    async def send(self, message: ASGISendEvent) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            self._start(message)
        elif not self.response_complete:
            self._body(message)
        else:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}' sent, "
                "after response already completed."
            )

    def send_held_head(self) -> None:
        """An app that ends (or fails) between the head and the body: its head goes out now, as
        uvicorn would have sent it, before uvicorn closes the connection."""
        if self.held_head is not None:
            head, self.held_head = self.held_head, None
            if not self.disconnected:
                self.transport.write(head)

    def _start(self, message: ASGISendEvent) -> None:
        if message["type"] != "http.response.start":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
            )
        self.response_started = True
        self.waiting_for_100_continue = False
        head = self._head(message["status"], message.get("headers", []))
        if self.chunked_encoding:
            self.transport.write(head)
        else:
            self.held_head = head

    def _head(self, status_code: int, message_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's status line and headers, checked and framed as uvicorn does."""
        headers = self.default_headers + list(message_headers)
        if self.access_log:
            self._log_access(status_code)
        content = [STATUS_LINE[status_code]]
        has_connection_close = self._add_headers(content, headers)
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and not self._bodiless(status_code):
            self.chunked_encoding = True  # neither Content-Length nor Transfer-Encoding given
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)

    def _add_headers(self, content: list[bytes], headers: list[tuple[bytes, bytes]]) -> bool:
        """Each header line, checked; the framing they give noted. True if one says close."""
        has_connection_close = False
        for name, value in headers:
            if HEADER_RE.search(name):
                raise RuntimeError("Invalid HTTP header name.")
            if HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header value.")
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in _tokens(value):
                self.keep_alive = False
                has_connection_close = True
            content.extend([name, b": ", value, b"\r\n"])
        return has_connection_close

    def _bodiless(self, status_code: int) -> bool:
        return self.scope["method"] == "HEAD" or status_code in NO_BODY_STATUSES

    def _log_access(self, status_code: int) -> None:
        self.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(self.scope),
            self.scope["method"],
            get_path_with_query_string(self.scope),
            self.scope["http_version"],
            status_code,
        )

    def _body(self, message: ASGISendEvent) -> None:
        if message["type"] != "http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
            )
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        data = self._framed(body, more_body)
        if self.held_head is not None:
            data, self.held_head = self.held_head + data, None  # the one write of the answer
        if data:
            self.transport.write(data)
        if not more_body:
            self._complete()

    def _framed(self, body: bytes, more_body: bool) -> bytes:
        """What of this body message goes on the wire (uvicorn's framing and its checks)."""
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            return b""
        if self.chunked_encoding:
            chunk = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            return chunk if more_body else chunk + b"0\r\n\r\n"
        if len(body) > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= len(body)
        return body

    def _complete(self) -> None:
        if self.expected_content_length != 0:
            raise RuntimeError("Response content shorter than Content-Length")
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()


def _tokens(value: bytes) -> list[bytes]:
    return [token.lower().strip() for token in value.split(b",")]
