"""What the bench watches beside the load: `GET /healthz` latency on a connection of its own, and
the gateway's own event-loop lag monitor (`voice_gateway_event_loop_lag_seconds` in /metrics)."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from .spread import percentile

HEALTHZ_INTERVAL_S = 0.01  # ~100 probes per second: a p99 of ~1,000 samples in a 10 s run
HEALTHZ_TIMEOUT_S = 10.0
LAG_BUCKET = re.compile(r'^voice_gateway_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$')


class HealthzSampler:
    """A thread asking `/healthz` over one keep-alive connection until stopped."""

    def __init__(self, base_url: str) -> None:
        split = urlsplit(base_url)
        self._host, self._port = split.hostname or "127.0.0.1", split.port or 80
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-sampler", daemon=True)

    def __enter__(self) -> HealthzSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(HEALTHZ_TIMEOUT_S + 1)

    def p99_ms(self) -> float | None:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else None

    def _run(self) -> None:
        connection = self._connect()
        while not self._stop.wait(HEALTHZ_INTERVAL_S):
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            if ok:
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.failures += 1
                connection.close()
                connection = self._connect()
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=HEALTHZ_TIMEOUT_S)


def loop_lag_buckets(base_url: str) -> dict[float, float]:
    """The lag histogram's cumulative bucket counts, by upper bound; empty if none is served."""
    try:
        text = httpx.get(base_url + "/metrics", timeout=HEALTHZ_TIMEOUT_S).text
    except httpx.HTTPError:
        return {}
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if match := LAG_BUCKET.match(line):
            buckets[float(match[1])] = float(match[2])
    return buckets


def loop_lag_p99_ms(before: Mapping[float, float], after: Mapping[float, float]) -> float | None:
    """The upper bound of the bucket the run's 99th percentile falls in (inf: past the last)."""
    if not after:
        return None
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return None
    for le, cumulative in counts.items():
        if cumulative >= 0.99 * total:
            return le * 1000
    return None
