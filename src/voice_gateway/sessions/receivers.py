"""The app's event receivers as the delivery reaches them: one keep-alive connection pool per
origin (scheme, host and port), the gateway's own (livekit/twirp_pool.py), opened with the first
event sent there and closed with the outbox.

Not httpx: its connection pool walks every connection per request, and it cost ~700 µs of CPU per
session, more than serving the session (bench/README.md, measured decisions). As httpx did: TLS
verified by `ssl`'s defaults, redirects not followed (a 3xx is a refusal, retried), a URL's user
info sent as Basic credentials. What the receiver answers is read and dropped past
`BODY_KEPT`: nothing in it is used, and a receiver must not make the gateway hold megabytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, urlsplit

from ..livekit.twirp_pool import TwirpAnswer, TwirpPool
from ..settings import NotAReceiverUrl, ascii_host

__all__ = ["NotAReceiverUrl", "Receivers", "receiver_of"]

MEDIA_TYPE = "application/json"
BODY_KEPT = 1024
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # besides letters, digits and "_.-": sent as they are
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Receiver:
    pool: TwirpPool
    target: str  # the request line's path and query
    credentials: str  # an Authorization line from the URL's user info, or nothing


class Receivers:
    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections  # per origin
        self._pools: dict[str, TwirpPool] = {}
        self._receivers: dict[str, Receiver] = {}

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> TwirpAnswer:
        """POST `body` to `url` with `headers`; raises twirp_pool's Unreachable or NotHttp, and
        NotAReceiverUrl for a URL no start-up checked (one queued by another replica)."""
        receiver = self._receivers.get(url) or self._add(url)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return await receiver.pool.send(receiver.target, receiver.credentials + lines, body)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()

    def _add(self, url: str) -> Receiver:
        parts = urlsplit(url)
        origin = _origin(parts)
        pool = self._pools.get(origin)
        if pool is None:
            pool = TwirpPool(origin, self._max_connections, MEDIA_TYPE, BODY_KEPT)
            self._pools[origin] = pool
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # As httpx sends them: what is not ASCII as its UTF-8 escapes, and escapes kept.
        target = quote(target, safe=URL_SAFE)
        credentials = _basic(parts.netloc.rpartition("@")[0])
        receiver = self._receivers[url] = Receiver(pool, target, credentials)
        return receiver


def _origin(parts: SplitResult) -> str:
    """scheme://host[:port], a host name that is not ASCII in its IDNA 2008 form (as httpx and
    browsers send it), the scheme's own port left out."""
    host = ascii_host(parts.hostname or "")
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    shown_port = "" if port is None or port == DEFAULT_PORTS.get(parts.scheme) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


def _basic(user_info: str) -> str:
    user, _, password = user_info.partition(":")
    if not user and not password:
        return ""
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"


def receiver_of(url: str) -> str:
    """The URL as logs may show it: a query or user info could carry the receiver's own token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
