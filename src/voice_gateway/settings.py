"""The gateway's settings: one class, read from the environment and `.env`, built once per app."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import limits
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .vocabulary import AGENT_ID_PATTERN, BEARER_TOKEN_PATTERN, ROOM_PREFIX_PATTERN

ENV_PREFIX = "VOICE_GATEWAY_"

# LiveKit's own variable names, shared with every LiveKit tool; everything else carries the prefix.
LIVEKIT_ENV_NAMES = {
    "livekit_url": "LIVEKIT_URL",
    "livekit_api_key": "LIVEKIT_API_KEY",
    "livekit_api_secret": "LIVEKIT_API_SECRET",
}

MAX_LIMIT_S = 30 * 24 * 3600  # as long as the longest session may last


def _names(field: str, former: str) -> AliasChoices:
    """A setting's own variable and the name it had before, still read."""
    return AliasChoices(ENV_PREFIX + field.upper(), ENV_PREFIX + former.upper(), field)


CommaSeparated = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]

# End-user tokens: keys from a JWKS are asymmetric, a shared secret is HMAC. Never both kinds for
# one source, so a token signed with HS256 using the IdP's *public* key never verifies (confusion).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_SHA256_ENTRY = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
_BEARER_TOKEN = re.compile(rf"^{BEARER_TOKEN_PATTERN}$")
# Standard Webhooks: "whsec_" and the key in base64, at least 24 bytes (32 characters) of it.
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    livekit_url: str = Field(validation_alias=AliasChoices("LIVEKIT_URL", "livekit_url"))
    livekit_api_key: str = Field(
        min_length=1, validation_alias=AliasChoices("LIVEKIT_API_KEY", "livekit_api_key")
    )
    livekit_api_secret: SecretStr = Field(
        min_length=1, validation_alias=AliasChoices("LIVEKIT_API_SECRET", "livekit_api_secret")
    )
    public_livekit_url: str | None = None
    room_prefix: str = Field("foundry", pattern=ROOM_PREFIX_PATTERN)
    livekit_timeout_s: float = Field(5.0, gt=0, le=300)
    livekit_max_connections: int = Field(1024, ge=1)
    thread_limit: int = Field(40, ge=1, le=1024)
    max_session_hours: float = Field(24.0, gt=0, le=24 * 30)
    # Session time limits (sessions/time_limits.py); 0 turns one off. The first two are LiveKit's
    # own empty and departure timeouts, under the names of what they limit; the old names stay.
    user_join_timeout_s: int = Field(
        120, ge=0, le=MAX_LIMIT_S, validation_alias=_names("user_join_timeout_s", "empty_timeout_s")
    )
    solo_timeout_s: int = Field(
        20, ge=0, le=MAX_LIMIT_S, validation_alias=_names("solo_timeout_s", "departure_timeout_s")
    )
    agent_join_timeout_s: int = Field(30, ge=0, le=MAX_LIMIT_S)
    agent_wait_s: float = Field(10.0, gt=0, le=60)
    allowed_agents: CommaSeparated = Field(default_factory=list)
    cors_origins: CommaSeparated = Field(default_factory=list)
    # Operations: logs, the event-loop lag monitor, the drain on SIGTERM.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    loop_lag_interval_s: float = Field(0.5, gt=0, le=60)
    loop_lag_warning_s: float = Field(0.1, gt=0, le=60)
    shutdown_grace_s: float = Field(10.0, gt=0, le=3600)
    shutdown_delay_s: float = Field(2.0, ge=0, le=3600)
    # Caller authentication: service keys, and/or the app's own end-user JWTs.
    api_keys: SecretList = Field(default_factory=list)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: CommaSeparated = Field(default_factory=list)
    jwt_jwks_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_jwks_timeout_s: float = Field(5.0, gt=0, le=60)
    jwt_jwks_refetch_interval_s: float = Field(30.0, ge=0, le=3600)
    # Abuse limits. A rate is `limits` notation ("30/minute", "5/second;100/hour"); "" = unlimited.
    redis_url: SecretStr | None = None
    rate_limit_user: str = "30/minute"
    rate_limit_address: str = "120/minute"
    rate_limit_service: str = ""
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    trusted_proxies: CommaSeparated = Field(default_factory=list)
    # The HTTP edge (ops/edge_protocol.py): what one slow, silent or huge client may hold.
    # h11 stops a head at 16 KiB, nginx at 4 x 8 KiB; 32 KiB leaves room for large JWTs.
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    header_read_timeout_s: float = Field(10.0, gt=0, le=300)
    body_read_timeout_s: float = Field(30.0, gt=0, le=3600)
    max_client_connections: int = Field(4096, ge=1, le=1_000_000)
    # Requests served at once; past it 503 `overloaded` at once (ops/edge_protocol.py). 256 holds
    # the 200 in flight 1,000 sessions/s need with LiveKit at 200 ms, and keeps the queue of a
    # saturated gateway (~1,100 sessions/s on one core) at ~0.25 s (bench/README.md).
    max_requests_in_flight: int = Field(256, ge=1, le=1_000_000)
    # The token endpoint and session lifetime.
    # LiveKit clients refetch a token 60 s before it expires, so a shorter TTL would mean a
    # refetch loop; 15 minutes is what LiveKit's own starters use.
    token_ttl_s: int = Field(900, ge=120, le=24 * 3600)
    token_session_hours: float = Field(1.0, gt=0, le=24 * 30)
    default_agent: str | None = Field(None, pattern=AGENT_ID_PATTERN)
    max_client_metadata_bytes: int = Field(4096, ge=0, le=65536)
    reaper_interval_s: float = Field(30.0, gt=0, le=3600)
    # Admission control: live sessions at once, over the gateway, per agent, per user; None: no cap.
    max_sessions: int | None = Field(None, ge=1)
    max_sessions_per_agent: int | None = Field(None, ge=1)
    max_sessions_per_user: int | None = Field(None, ge=1)
    # How long a slot is held for a session whose room LiveKit does not list yet (a token's room
    # appears on first join). None: as long as a token lives, so that no token fetched under a
    # cap can start a session over it later (a cap the token endpoint bypasses is no cap).
    reservation_grace_s: int | None = Field(None, ge=1, le=24 * 3600)
    # Session events to the app (sessions/events.py): off while no URL is set.
    events_url: CommaSeparated = Field(default_factory=list)
    events_secret: SecretStr | None = None
    events_timeout_s: float = Field(5.0, gt=0, le=60)
    events_retry_for_s: float = Field(24 * 3600.0, gt=0, le=7 * 24 * 3600)
    # The longest wait between two attempts of one event (the backoff's cap, and Retry-After's).
    events_retry_max_s: float = Field(600.0, gt=0, le=3600)
    # With Redis: how long a replica's hold on a partition of events outlives its last renewal
    # (sessions/event_leases.py), so how late a SIGKILLed replica's events are.
    events_lease_s: float = Field(30.0, ge=3, le=3600)

    @field_validator("livekit_url", "public_livekit_url")
    @classmethod
    def _must_be_livekit_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http://, https://, ws:// or wss://")
        return value.rstrip("/") if value else value

    @field_validator(
        "default_agent", "max_sessions", "max_sessions_per_agent", "max_sessions_per_user",
        "reservation_grace_s",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_means_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "allowed_agents", "cors_origins", "api_keys", "jwt_algorithms", "trusted_proxies",
        "events_url",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("shutdown_delay_s")
    @classmethod
    def _delay_fits_in_grace(cls, value: float, info: ValidationInfo) -> float:
        # The delay is the first part of the grace; in-flight requests need the rest of it.
        grace = info.data.get("shutdown_grace_s")
        if grace is not None and value >= grace:
            raise ValueError(f"must be shorter than {ENV_PREFIX}SHUTDOWN_GRACE_S ({grace:g} s)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _hashed_keys_are_well_formed(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for number, key in enumerate(keys, start=1):
            value = key.get_secret_value()
            if value.startswith("sha256:") and not _SHA256_ENTRY.match(value):
                raise ValueError(f"entry {number} must be sha256: and 64 hex digits")
            if not value.startswith("sha256:") and not _BEARER_TOKEN.match(value):
                raise ValueError(f"entry {number} has characters a Bearer header cannot carry")
        return keys

    @field_validator(
        "jwt_issuer", "jwt_audience", "jwt_jwks_url", "jwt_secret", "redis_url", "events_secret"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        empty = value == "" or (isinstance(value, SecretStr) and not value.get_secret_value())
        return None if empty else value

    @field_validator("redis_url")
    @classmethod
    def _must_be_a_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, not first by the client in the lifespan (a traceback, exit 3); the
        # message never echoes the URL, which may carry a password.
        if value is not None and not _is_redis_url(value.get_secret_value()):
            raise ValueError(
                "must be redis://[user:password@]host[:port][/db] (or rediss:// for TLS)"
            )
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _must_be_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://)")
        return value

    @field_validator("events_url")
    @classmethod
    def _must_be_http_urls(cls, urls: list[str]) -> list[str]:
        for number, url in enumerate(urls, start=1):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"entry {number} must start with https:// (or http://)")
            if any(char.isspace() or not char.isprintable() for char in url):
                raise ValueError(f"entry {number} must not hold spaces or control characters")
            if not _names_a_host(url):
                raise ValueError(f"entry {number} must name a host (and a port from 1 to 65535)")
        return urls

    @field_validator("events_secret")
    @classmethod
    def _must_be_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError("must be whsec_ and base64 (a Standard Webhooks secret)")
        return value

    @model_validator(mode="after")
    def _events_are_signed(self) -> Self:
        # An unsigned event could be forged by anyone who can reach the app's receiver.
        if self.events_url and self.events_secret is None:
            raise ValueError(f"{ENV_PREFIX}EVENTS_SECRET must be set to send events")
        return self

    @model_validator(mode="after")
    def _leases_outlast_a_send(self) -> Self:
        # The lease's fence (event_leases.py) stops sends a send's length before it lapses.
        # Leases exist only with Redis: in memory the setting does nothing.
        uses_leases = self.redis_url is not None and self.events_configured
        if uses_leases and self.events_lease_s < 2 * self.events_safety_s:
            least = f"2 x ({ENV_PREFIX}EVENTS_TIMEOUT_S + 1)"
            raise ValueError(f"{ENV_PREFIX}EVENTS_LEASE_S must be at least {least}")
        return self

    @property
    def events_safety_s(self) -> float:
        """The longest a send takes, and then some: an owner stops starting them this long before
        its lease lapses."""
        return self.events_timeout_s + 1

    @property
    def events_configured(self) -> bool:
        return bool(self.events_url)

    @field_validator("rate_limit_user", "rate_limit_address", "rate_limit_service")
    @classmethod
    def _must_be_rates(cls, value: str) -> str:
        try:
            limits.parse_many(value) if value.strip() else None
        except ValueError:
            raise ValueError('must be rates like "30/minute" or "5/second;100/hour"') from None
        return value.strip()

    @model_validator(mode="after")
    def _end_user_tokens_are_coherent(self) -> Self:
        if self.jwt_jwks_url and self.jwt_secret:
            raise ValueError(f"set {_JWKS_URL} or {_SECRET}, not both")
        if not self.end_user_tokens_configured:
            if self.jwt_issuer or self.jwt_audience or self.jwt_algorithms:
                raise ValueError(f"{_JWKS_URL} or {_SECRET} is needed to verify end-user tokens")
            return self
        if missing := [name for name, value in _required_jwt_claims(self) if not value]:
            raise ValueError(" and ".join(missing) + " must be set to verify end-user tokens")
        allowed = ASYMMETRIC_ALGORITHMS if self.jwt_jwks_url else HMAC_ALGORITHMS
        if unfit := [alg for alg in self.jwt_algorithms if alg not in allowed]:
            source = _JWKS_URL if self.jwt_jwks_url else _SECRET
            raise ValueError(
                f"{ENV_PREFIX}JWT_ALGORITHMS: {', '.join(unfit)} cannot verify with {source} "
                f"(use {', '.join(sorted(allowed))})"
            )
        return self

    @property
    def end_user_tokens_configured(self) -> bool:
        return bool(self.jwt_jwks_url or self.jwt_secret)

    @property
    def authentication_configured(self) -> bool:
        """Whether callers must prove who they are; only `dev` may run without."""
        return bool(self.api_keys) or self.end_user_tokens_configured

    @property
    def end_user_algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return ["RS256"] if self.jwt_jwks_url else ["HS256"]

    @model_validator(mode="after")
    def _token_sessions_fit(self) -> Self:
        if self.token_session_hours > self.max_session_hours:
            raise ValueError("VOICE_GATEWAY_TOKEN_SESSION_HOURS exceeds the maximum session length")
        if self.token_ttl_s > self.token_session_hours * 3600:
            # A join token outliving its session would recreate a room the reaper just ended.
            raise ValueError("VOICE_GATEWAY_TOKEN_TTL_S exceeds the token session's length")
        if self.reservation_grace_s and self.reservation_grace_s > self.token_ttl_s:
            # No join can use a token after its TTL: a longer hold would only block a slot.
            raise ValueError("VOICE_GATEWAY_RESERVATION_GRACE_S exceeds VOICE_GATEWAY_TOKEN_TTL_S")
        allowed = self.allowed_agents
        if self.default_agent and allowed and self.default_agent not in allowed:
            raise ValueError("VOICE_GATEWAY_DEFAULT_AGENT is not in VOICE_GATEWAY_ALLOWED_AGENTS")
        return self

    @property
    def client_livekit_url(self) -> str:
        """The URL clients dial: the public one, else the API URL in its WebSocket form."""
        if self.public_livekit_url:
            return self.public_livekit_url
        return self.livekit_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


_JWKS_URL = f"{ENV_PREFIX}JWT_JWKS_URL"
_SECRET = f"{ENV_PREFIX}JWT_SECRET"


def _required_jwt_claims(settings: Settings) -> list[tuple[str, str | None]]:
    # Without both checks any token the IdP ever signed, for any app, would be accepted here.
    return [
        (f"{ENV_PREFIX}JWT_ISSUER", settings.jwt_issuer),
        (f"{ENV_PREFIX}JWT_AUDIENCE", settings.jwt_audience),
    ]


def env_name(field: str) -> str:
    """The environment variable that sets a field, as a person would type it."""
    return LIVEKIT_ENV_NAMES.get(field, ENV_PREFIX + field.upper())


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad variable, without echoing any value (it may be a secret)."""
    problems = []
    for item in error.errors():
        if not item["loc"]:  # a rule across several settings names them in its message
            problems.append(item["msg"].removeprefix("Value error, "))
            continue
        field = str(item["loc"][0])
        field = next((f for f, e in LIVEKIT_ENV_NAMES.items() if e == field), field)
        reason = "is missing" if item["type"] == "missing" else f"is invalid: {item['msg']}"
        problems.append(f"{env_name(field)} {reason}")
    return "invalid settings: " + "; ".join(problems)


def _is_redis_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError:
        return False
    path_is_a_db = parts.path.strip("/").isdigit() or parts.path in ("", "/")
    return (
        parts.scheme in ("redis", "rediss")
        and bool(parts.hostname)
        and path_is_a_db
        and (port is None or port > 0)
    )


def _names_a_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for one not a number, or out of range
        ascii_host(parts.hostname or "")
    except ValueError:  # NotAReceiverUrl too
        return False
    return port != 0


class NotAReceiverUrl(ValueError):
    """An events URL that cannot be reached as given."""


def ascii_host(host: str) -> str:
    """The host as it goes on the wire; NotAReceiverUrl when it cannot."""
    if host.isascii():
        labels = host.split(".")
        if host and all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
            return host
        raise NotAReceiverUrl(f"{host!r} is not a host name")
    import idna  # its tables only for a host that needs them (start-up time)

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise NotAReceiverUrl(f"{host!r} is not a host name IDNA can encode: {exc}") from None
