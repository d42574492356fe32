"""The session time limits, and who enforces each.

Measured on livekit-server 1.13.5 (tests/e2e/test_time_limits.py, docs/livekit-observed.md): an
agent does not keep a room open. A room that no user joined closes `empty_timeout` after it was
created, the agent in it or not; once its last user left, `departure_timeout` later. So LiveKit
itself enforces two of the gateway's limits, each under its own name: `user_join_timeout_s` is the
room's empty timeout and `solo_timeout_s` its departure timeout; the gateway names the end when
LiveKit reports the room finished (webhook_intake.py), or when the sweep finds it gone. What
LiveKit lacks, the gateway enforces itself: `expires_at` (reaper.py) and the agent's join timeout
(agent_watch.py).
"""

from __future__ import annotations

from .record import SessionRecord

# A limit turned off (0) still needs a timeout LiveKit accepts, and LiveKit reads 0 as its own
# default (300 s empty, 20 s departure): past the session's end instead, where the reaper ends it.
PAST_EXPIRY_S = 60


def livekit_timeout(limit_s: int, lifetime_s: int) -> int:
    """The LiveKit room timeout that enforces a limit of `limit_s` (0: off)."""
    return limit_s if limit_s > 0 else lifetime_s + PAST_EXPIRY_S


def lifetime_s(record: SessionRecord) -> int:
    return int((record.expires_at - record.created_at).total_seconds())
