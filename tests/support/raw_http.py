"""HTTP/1.1 over a raw socket, for what no client library will send: upgrade offers, pipelining,
bodies split across writes, heads too large, bytes that never come."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout_s: float = 10.0, source: str = HOST) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout_s, source_address=(source, 0))


def exchange(port: int, *writes: bytes, pause_s: float = 0.3) -> list[RawResponse]:
    """Send each write (pausing between them), then read until the server closes."""
    with connect(port) as sock:
        for number, data in enumerate(writes):
            if number:
                time.sleep(pause_s)
            sock.sendall(data)
        return parse_responses(read_until_closed(sock))


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # what was read before the reset still counts
    return received


def answered_while_sending(sock: socket.socket, chunk: bytes, most_bytes: int) -> bytes:
    """Keep sending `chunk` until the server answers (or `most_bytes` are sent); the answer."""
    sent = 0
    while sent < most_bytes:
        if select.select([sock], [], [], 0)[0]:
            return read_until_closed(sock)
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return read_until_closed(sock)


def parse_responses(data: bytes) -> list[RawResponse]:
    """Responses back to back, each framed by its Content-Length (all of the gateway's are)."""
    responses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        responses.append(RawResponse(int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return responses


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One request's bytes, with Host and (for a body) Content-Length filled in."""
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body and not any(name.lower() == "content-length" for name in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode() + body
