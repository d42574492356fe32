"""The gateway as `serve` runs it (uvicorn, `ops.server.server_config`), in a thread.

For what only a real server shows: raw sockets, and how uvicorn sets the client address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.support.processes import bound_listener
from voice_gateway.ops.metrics import Metrics
from voice_gateway.ops.server import server_config
from voice_gateway.settings import Settings
from voice_gateway.web.app import create_app

HOST = "127.0.0.1"


@contextmanager
def live_gateway(settings: Settings, host: str = HOST) -> Iterator[tuple[str, int]]:
    listener = bound_listener(host)
    port = int(listener.getsockname()[1])
    metrics = Metrics()
    config = server_config(create_app(settings, metrics=metrics), settings, host, port, metrics)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the gateway stopped while starting"
            assert time.monotonic() < deadline, "the gateway did not start in 20 s"
            time.sleep(0.02)
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        listener.close()
