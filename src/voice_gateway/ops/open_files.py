"""The open-file limit: every client connection is a file descriptor.

Linux's default soft limit (1024) is far below what a gateway holding many idle clients needs,
and the hard limit is usually much higher; a process may raise its soft limit to the hard one
itself. What the gateway then accepts is bounded below it (`client_connection_bound`), so fds
for LiveKit, Redis and the logs are never the ones that run out.
"""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger("voice_gateway.server")
# RLIM_INFINITY cannot be a soft limit on Linux (nr_open caps it); this is nr_open's default.
UNLIMITED_TARGET = 1 << 20


def raise_open_file_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit, and say what it was and is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if target <= soft:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("open-file limit stays at %d: raising it failed (%s)", soft, exc)
        return
    logger.info("open-file limit raised from %d to %d (the hard limit)", soft, target)


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_connection_bound(wanted: int, open_file_limit: int) -> int:
    """At most three quarters of the open files go to clients; the rest stays for LiveKit's
    pool, Redis, the logs and the listener."""
    return max(1, min(wanted, open_file_limit * 3 // 4))
