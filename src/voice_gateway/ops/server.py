"""uvicorn, driven by the gateway so that SIGTERM drains the process instead of cutting it off.

On SIGTERM the gateway starts draining at once (`/readyz` answers 503, every answer closes its
connection) but keeps its listener open for `VOICE_GATEWAY_SHUTDOWN_DELAY_S`, so a load balancer
that polls readiness stops routing here before connections would be refused. Then uvicorn closes
the listener and the idle connections, lets in-flight requests finish within the rest of
`VOICE_GATEWAY_SHUTDOWN_GRACE_S`, runs the lifespan's shutdown (background tasks stop, the
LiveKit client closes) and the process exits 0. SIGINT (Ctrl-C) skips the delay; a second signal
of either kind stops at once, without waiting for requests, but still through the lifespan's
shutdown. SIGTERM again within `DUPLICATE_SIGNAL_S` is the first one delivered twice: a
process group signalled as a whole (systemd's default, dumb-init, `timeout`) with a wrapper in it
that passes the signal on (`uv run`) hands the gateway every SIGTERM twice, a millisecond apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from ..settings import Settings
from .drain import Drain
from .edge_events import EdgeEvents
from .edge_protocol import EdgeLimits, edge_protocol
from .listener import EagerListener, bind_listeners
from .metrics import Metrics
from .open_files import client_connection_bound, open_file_limit, raise_open_file_limit

logger = logging.getLogger("voice_gateway.server")  # pinned: logs know it by this name
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STARTUP_FAILURE = 3  # uvicorn's status when it cannot start
CUT_OFF_WAIT_S = 1.0  # for requests cut off (grace over, or forced) to end: each one's 503
DUPLICATE_SIGNAL_S = 0.25  # far above a forwarded copy's delay, far below an operator's second
# Probes and scrapes are answered whatever the load: an orchestrator that saw them fail would
# restart or unroute a gateway that is only busy.
NEVER_SHED_PATHS = frozenset({b"/healthz", b"/readyz", b"/metrics"})
App = Callable[..., Any]  # an ASGI app (typed by web/, which ops/ does not import)


# The young generation is counted in objects made less objects freed, never below zero: with a
# few hundred requests in flight, each holding ~80 objects, a collection at 20,000 came every
# ~0.1 s under overload, walked the live requests (~5 ms each) and promoted them, and their
# frees after it no longer counted. At 100,000 only what sessions keep (~4 objects each) brings
# one; cyclic garbage, which only a collection frees, waits longer: at most that many objects
# (bench/README.md, measured decisions; CPython's 700 was every ~140 sessions).
YOUNG_GENERATION_THRESHOLD = 100_000


def settle_heap() -> None:
    """Once started: what start-up made (modules, schemas, the SDK's descriptors: ~70,000
    objects) lives as long as the process, so it goes out of the collector's reach (a full
    collection no longer walks it while requests wait); and the young generation is collected
    less often."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, delay_s: float, grace_s: float):
        super().__init__(config)
        self._drain = drain
        self._delay_s = delay_s
        self._grace_s = grace_s
        self._close_listener_at: float | None = None
        self._requests_grace_s = grace_s  # what is left of the grace once the listener closes
        self._cut_off: set[asyncio.Task[None]] = set()  # cancelled once: never again
        self._first_signal: tuple[int, float] | None = None  # which, and when it came

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Replaces uvicorn's own: its first signal closes the listener at once, and after a
        # graceful stop it raises the signal again, so the process would die of it (status 143)
        # instead of exiting 0. Loop signal handlers also let the handler log safely.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name, now = signal.Signals(sig).name, time.monotonic()
        if self._first_signal is not None:
            self._handle_another(sig, name, now, *self._first_signal)
            return
        self._first_signal = (sig, now)
        delay_s = self._delay_s if sig == signal.SIGTERM else 0.0
        self._drain.start()
        self._close_listener_at = now + delay_s
        self._requests_grace_s = self._grace_s - delay_s
        logger.info(
            "%s: draining; /readyz answers 503, the listener closes in %g s, "
            "requests in flight then have %g s more",
            name,
            delay_s,
            self._requests_grace_s,
        )

    def _handle_another(self, sig: int, name: str, now: float, first: int, first_at: float) -> None:
        # Only SIGTERM: a supervisor's, passed on by a wrapper; a second Ctrl-C is a person's.
        if sig == first == signal.SIGTERM and now - first_at < DUPLICATE_SIGNAL_S:
            logger.info("%s again at once: the same stop, delivered twice; still draining", name)
            return
        logger.warning("%s again: stopping now, without waiting for requests", name)
        self._drain.hurry()
        self.should_exit = self.force_exit = True

    async def _wait_tasks_to_complete(self) -> None:
        # uvicorn's own wait, with the grace kept here (config.timeout_graceful_shutdown is
        # None): past it uvicorn would cancel the requests and start the lifespan's shutdown in
        # the same breath, so a cut-off request's clean-up raced its task group closing.
        try:
            await asyncio.wait_for(super()._wait_tasks_to_complete(), self._requests_grace_s)
        except TimeoutError:
            # Stopped without a signal (embedded), the drain starts here: so the requests cut
            # off are still answered 503 shutting_down, not a 500 (request_observer.py).
            self._drain.start()
            await self._cut_off_requests("the grace is over")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit and not self.lifespan.shutdown_event.is_set():
            # uvicorn skips the lifespan's shutdown when forced (unless under way already), and
            # asyncio.run then cancels the lifespan with a traceback, its background tasks and
            # clients never stopped. Hurried, it waits for nothing but the clean-ups.
            await self._cut_off_requests("stopping now")
            await self.lifespan.shutdown()

    async def _cut_off_requests(self, why: str) -> None:
        """The requests still served, cancelled while the app still runs: each is answered 503
        (web/middleware/request_observer.py), and what they start as they end (a half-created
        room's deletion) lands in its task groups, which the lifespan's shutdown then gives
        their moment, instead of failing in groups already closed."""
        # Not twice: a second signal during the wait below would cancel the clean-ups under way.
        requests = [task for task in self.server_state.tasks if task not in self._cut_off]
        if not requests:
            return
        logger.warning("%s: cutting off %d request(s) still served", why, len(requests))
        self._cut_off.update(requests)
        for request in requests:
            request.cancel()
        await asyncio.wait(requests, timeout=CUT_OFF_WAIT_S)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # The gateway always serves a host and port (server_config): never sockets, fd or uds.
        await self._start_listening()
        settle_heap()

    async def _start_listening(self) -> None:
        """uvicorn's start-up for a host and port, with listeners that accept every waiting
        connection per wake-up (ops/listener.py) instead of uvloop's one per poll."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config, loop = self.config, asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        try:
            listeners = bind_listeners(config.host, config.port, config.backlog)
        except OSError as exc:
            logger.error("could not listen on %s:%d: %s", config.host, config.port, exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)
        self.servers = [
            EagerListener(listener, create_protocol, loop, config.backlog)  # type: ignore[misc]
            for listener in listeners
        ]
        self._log_started_message(listeners)
        self.started = True

    async def on_tick(self, counter: int) -> bool:
        if self._close_listener_at is not None and time.monotonic() >= self._close_listener_at:
            self.should_exit = True
        return await super().on_tick(counter)


def serve_until_stopped(
    app_factory: Callable[[Settings, Drain, Metrics], App], settings: Settings, host: str, port: int
) -> None:
    """Serve the app until a signal stops it. A start that fails (the lifespan, the port) exits
    with STARTUP_FAILURE, uvicorn's status, once it has logged why (GatewayServer.startup)."""
    drain, metrics = Drain(), Metrics()  # shared: the server drains, the edge counts
    raise_open_file_limit()
    config = server_config(app_factory(settings, drain, metrics), settings, host, port, metrics)
    server = GatewayServer(config, drain, settings.shutdown_delay_s, settings.shutdown_grace_s)
    server.run()


def server_config(
    app: App, settings: Settings, host: str, port: int, metrics: Metrics
) -> uvicorn.Config:
    """How uvicorn serves the app. One worker per process: scale with replicas, each with its own
    LiveKit client and limiter. HTTP/1.1 through the edge protocol (ops/edge_protocol.py), over
    httptools; no WebSocket (the gateway serves none, so an upgrade offer is declined).

    The client address (rate limits, logs) is the TCP peer. `X-Forwarded-For` is believed only from
    the proxies in VOICE_GATEWAY_TRUSTED_PROXIES; with none set, uvicorn's proxy-header handling
    is off entirely (its own default would trust 127.0.0.1, or $FORWARDED_ALLOW_IPS).
    """
    trusted = settings.trusted_proxies
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=1,
        http=edge_protocol(edge_limits(settings), EdgeEvents(metrics)),
        ws="none",
        lifespan="on",  # the app has one: never guessed "unsupported", as "auto" may
        server_header=False,
        access_log=False,  # the gateway writes its own access line, with the request id
        log_config=None,  # configure_logging already routed uvicorn's loggers
        log_level=settings.log_level,
        reset_contextvars=True,  # each request starts from a clean context
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted) if trusted else None,
    )


def edge_limits(settings: Settings) -> EdgeLimits:
    open_files = open_file_limit()
    bound = client_connection_bound(settings.max_client_connections, open_files)
    logger.info("open-file limit %d: client connections bounded at %d", open_files, bound)
    return EdgeLimits(
        max_header_bytes=settings.max_header_bytes,
        header_read_timeout_s=settings.header_read_timeout_s,
        body_read_timeout_s=settings.body_read_timeout_s,
        max_connections=bound,
        max_requests_in_flight=settings.max_requests_in_flight,
        never_shed_paths=NEVER_SHED_PATHS,
        cors_origins=frozenset(origin.encode() for origin in settings.cors_origins),
    )
