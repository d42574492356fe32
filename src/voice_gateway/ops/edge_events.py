"""What the HTTP edge does to connections, counted and logged.

Every shed connection counts in `voice_gateway_connections_shed_total`, every request refused
past the in-flight bound in `voice_gateway_requests_shed_total`; the log says so at most once per
reason every `LOG_INTERVAL_S`, with how many since: a flood of silent sockets (or of a load the
gateway sheds) must not become a flood of log lines.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from .metrics import Metrics

logger = logging.getLogger("voice_gateway.edge")  # pinned: logs know it by this name
LOG_INTERVAL_S = 10.0
REASONS = {
    "header_timeout": "the request line and headers did not arrive in time",
    "body_timeout": "the body did not arrive in time (408)",
    "headers_too_large": "the request line and headers were over the limit (431)",
    "invalid_http": "the request was not valid HTTP/1.1 (400)",
    "connection_limit": "the gateway held its most connections (503)",
    "in_flight_limit": "the gateway served its most requests at once (503)",
}


class EdgeEvents:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def opened(self) -> None:
        self._metrics.connections_open.inc()

    def closed(self) -> None:
        self._metrics.connections_open.dec()

    def shed(self, reason: str, client: tuple[str, int] | None) -> None:
        self._metrics.connections_shed.labels(reason).inc()
        self._log_now_and_then(reason, client)

    def request_shed(self, client: tuple[str, int] | None) -> None:
        """A request answered 503 at once: the gateway served its most requests at once."""
        self._metrics.requests_shed.inc()
        self._log_now_and_then("in_flight_limit", client)

    def _log_now_and_then(self, reason: str, client: tuple[str, int] | None) -> None:
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now - self._logged_at.get(reason, -math.inf) < LOG_INTERVAL_S:
            return
        count, self._unlogged[reason], self._logged_at[reason] = self._unlogged[reason], 0, now
        what = "refused %d request(s)" if reason == "in_flight_limit" else "closed %d connection(s)"
        logger.warning(
            what + ": %s; the last from %s",
            count,
            REASONS[reason],
            client[0] if client else "unknown",
            extra={"reason": reason, "connections": count},
        )
