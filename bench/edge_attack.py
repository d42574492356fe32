"""`/healthz` latency while one client attacks the HTTP edge of `voice-gateway serve`.

    uv run python -m bench.edge_attack [--seconds 10]

Starts the stand-in and the gateway on 127.0.0.1, measures `/healthz` alone, then again while
each attack runs: a header streamed without end (64 MB offered on each of 4 connections, again
and again), and 2000 silent sockets held open. Prints p50, p99 and max per phase. Loopback only,
bounded in bytes, sockets and seconds; it stops by itself.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from .children import HOST, Children
from .targets import Credentials, start_gateway_process, start_standin

ATTACK_BYTES = 64 * 1024 * 1024
STREAMERS = 4
SILENT_SOCKETS = 2000
CHUNK = b"a" * 65536


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_attack", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    args = parser.parse_args(argv)
    creds = Credentials()
    with tempfile.TemporaryDirectory() as scratch, Children(Path(scratch)) as children:
        _, livekit_url = start_standin(children, creds, 0, "edge")
        _, base = start_gateway_process(children, creds, livekit_url, "edge", {})
        port = int(base.rsplit(":", 1)[1])
        for name, attack in PHASES.items():
            stop = threading.Event()
            attacker = threading.Thread(target=attack, args=(port, stop), daemon=True)
            attacker.start()
            samples = _sample_healthz(base, args.seconds)
            stop.set()
            attacker.join(timeout=30)
            print(_line(name, samples))


def _sample_healthz(base: str, seconds: float) -> list[float]:
    samples, deadline = [], time.monotonic() + seconds
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            samples.append(time.perf_counter() - started)
            time.sleep(0.005)
    return samples


def _no_attack(port: int, stop: threading.Event) -> None:
    stop.wait()


def _endless_headers(port: int, stop: threading.Event) -> None:
    threads = [
        threading.Thread(target=_stream_one_header, args=(port, stop)) for _ in range(STREAMERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _stream_one_header(port: int, stop: threading.Event) -> None:
    while not stop.is_set():  # a new connection as soon as the gateway refuses the last one
        with socket.create_connection((HOST, port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
            sent = 0
            while sent < ATTACK_BYTES and not stop.is_set():
                try:
                    sock.sendall(CHUNK)
                except OSError:
                    break  # refused (431) and closed: start over
                sent += len(CHUNK)


def _silent_sockets(port: int, stop: threading.Event) -> None:
    sockets = [socket.create_connection((HOST, port)) for _ in range(SILENT_SOCKETS)]
    stop.wait()
    for sock in sockets:
        sock.close()


PHASES: dict[str, Callable[[int, threading.Event], None]] = {
    "no attack": _no_attack,
    f"endless header x{STREAMERS}": _endless_headers,
    f"{SILENT_SOCKETS} silent sockets": _silent_sockets,
}


def _line(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{name:24} n={len(ms):5}  p50 {statistics.median(ms):6.2f} ms  "
        f"p99 {p99:6.2f} ms  max {ms[-1]:7.2f} ms"
    )


if __name__ == "__main__":
    main()
