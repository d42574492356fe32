"""The gateway's vocabulary: what its ids, names and identities may look like, and how room names
are built from them and read back. Settings, wire models, access rules, the token endpoint and
idempotency all speak it; none of them spells a pattern of its own.

Room names, one shape per way a session starts (see `sessions/record.py`):

- `POST /api/voice/session`: `{prefix}_{user_id}_{agent_id}_{session_id}`, session id `sess_…`;
- `POST /api/voice/token`: `{prefix}_{session_id}`, the session id a canonical UUID;
- an idempotency claim: `{prefix}_claim_{session_id}` (never joined);
- the mark of an ended session: `{prefix}_ended_{session_id}` (never joined; endings.py).
"""

from __future__ import annotations

import uuid

USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,128}$"
IDENTITY_ALPHABET = "1-128 characters of A-Z a-z 0-9 _ . @ -"
AGENT_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"
AGENT_ALPHABET = "1-64 of a-z 0-9 _ -"
# No "_": a prefix must never swallow a part of the name that follows it.
ROOM_PREFIX_PATTERN = r"^[A-Za-z0-9-]{1,32}$"
# Every character a room name of ours can hold: prefix, user id, agent id, session id, and "_".
ROOM_NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,256}$"
ROOM_NAME_ALPHABET = "1-256 characters of A-Z a-z 0-9 _ . @ -"
MAX_ROOM_NAME_CHARS = 256
# Echoed request ids end up in logs and headers: short, and free of anything a log could misread.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/+=-]{1,128}$"
# Visible ASCII only: the key is hashed, never echoed, but a header value with controls is broken.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
SESSION_ID_PREFIX = "sess_"
SESSION_ID_CHARS = len(SESSION_ID_PREFIX) + 22  # ids.py: `sess_` and 128 bits in base64url


def session_room_name(prefix: str, user_id: str, agent_id: str, session_id: str) -> str:
    return f"{prefix}_{user_id}_{agent_id}_{session_id}"


def token_room_name(prefix: str, session_id: str) -> str:
    return f"{prefix}_{session_id}"


def claim_room_name(prefix: str, session_id: str) -> str:
    return f"{prefix}_claim_{session_id}"


def end_mark_room_name(prefix: str, session_id: str) -> str:
    return f"{prefix}_ended_{session_id}"


def token_session_id_of(room_name: str, prefix: str) -> str | None:
    """The session id in a token-shaped room name (`{prefix}_{uuid}`), or None."""
    head, _, session_id = room_name.partition("_")
    return session_id if head == prefix and is_canonical_uuid(session_id) else None


def session_id_named_by(room_name: str, prefix: str) -> str | None:
    """The session id a room's name ends in, whatever the room holds: how a room that a join
    re-created with other metadata (or none) is still known as the session's (endings.py)."""
    if not is_session_room_name(room_name, prefix):
        return None
    if (token_session := token_session_id_of(room_name, prefix)) is not None:
        return token_session
    head, tail = room_name[:-SESSION_ID_CHARS], room_name[-SESSION_ID_CHARS:]
    # `{prefix}_{user_id}_{agent_id}_`, each id at least one character: a claim or an end mark
    # (`{prefix}_claim_…`, `{prefix}_ended_…`) has one part there, not two.
    ids = head[len(prefix) + 1 : -1]
    two_parts = "_" in ids[1:-1]
    return tail if tail.startswith(SESSION_ID_PREFIX) and head.endswith("_") and two_parts else None


def is_session_room_name(room_name: str, prefix: str) -> bool:
    """A cheap first filter, before asking LiveKit about a room."""
    return room_name.startswith(f"{prefix}_") and len(room_name) <= MAX_ROOM_NAME_CHARS


def is_canonical_uuid(text: str) -> bool:
    # Canonical form only (lower-case, hyphenated), so one session id means one room name.
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


# RFC 6750's b64token: what an `Authorization: Bearer` header can carry.
BEARER_TOKEN_PATTERN = r"[A-Za-z0-9\-._~+/]+=*"  # noqa: S105  # a pattern, not a password


def problem_type(code: str) -> str:
    """A stable URI per error code (RFC 9457 `type`), for the app's problems and the server's."""
    return f"urn:voice-gateway:problem:{code}"


# What a browser's script may read of an answer from another origin: the CORS layer's, and the
# edge's own 503s to an allowed origin (ops/edge_protocol.py), so Retry-After reaches the app.
CORS_EXPOSED_HEADERS = ("X-Request-ID", "Retry-After", "WWW-Authenticate")


def cors_answer_headers(origin: str) -> dict[str, str]:
    """What Starlette's CORSMiddleware adds to an allowed origin's answer (not a preflight): for
    the answers made outside it, the app's cut-off 503 and the edge's own refusals."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": ", ".join(CORS_EXPOSED_HEADERS),
        "Vary": "Origin",
    }
