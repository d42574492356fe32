"""The gateway's settings: one class, read from the environment and `.env`, built once per app."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "VOICE_GATEWAY_"

# LiveKit's own variable names, shared with every LiveKit tool; everything else carries the prefix.
LIVEKIT_ENV_NAMES = {
    "livekit_url": "LIVEKIT_URL",
    "livekit_api_key": "LIVEKIT_API_KEY",
    "livekit_api_secret": "LIVEKIT_API_SECRET",
}

CommaSeparated = Annotated[list[str], NoDecode]


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
    room_prefix: str = Field("foundry", pattern=r"^[A-Za-z0-9-]{1,32}$")
    livekit_timeout_s: float = Field(5.0, gt=0, le=300)
    livekit_max_connections: int = Field(1024, ge=1)
    thread_limit: int = Field(40, ge=1, le=1024)
    max_session_hours: float = Field(24.0, gt=0, le=24 * 30)
    empty_timeout_s: int = Field(300, ge=1)
    departure_timeout_s: int = Field(20, ge=0)
    allowed_agents: CommaSeparated = Field(default_factory=list)
    cors_origins: CommaSeparated = Field(default_factory=list)
    # Operations: logs, the event-loop lag monitor, the drain on SIGTERM.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    loop_lag_interval_s: float = Field(0.5, gt=0, le=60)
    loop_lag_warning_s: float = Field(0.1, gt=0, le=60)
    shutdown_grace_s: float = Field(10.0, gt=0, le=3600)
    shutdown_delay_s: float = Field(2.0, ge=0, le=3600)

    @field_validator("livekit_url", "public_livekit_url")
    @classmethod
    def _must_be_livekit_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http://, https://, ws:// or wss://")
        return value.rstrip("/") if value else value

    @field_validator("allowed_agents", "cors_origins", mode="before")
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

    @property
    def client_livekit_url(self) -> str:
        """The URL clients dial: the public one, else the API URL in its WebSocket form."""
        if self.public_livekit_url:
            return self.public_livekit_url
        return self.livekit_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def env_name(field: str) -> str:
    """The environment variable that sets a field, as a person would type it."""
    return LIVEKIT_ENV_NAMES.get(field, ENV_PREFIX + field.upper())


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad variable, without echoing any value (it may be a secret)."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        field = next((f for f, e in LIVEKIT_ENV_NAMES.items() if e == field), field)
        reason = "is missing" if item["type"] == "missing" else f"is invalid: {item['msg']}"
        problems.append(f"{env_name(field)} {reason}")
    return "invalid settings: " + "; ".join(problems)
