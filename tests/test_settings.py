"""Settings of the token endpoint, the reaper and the session caps: defaults, bounds, and rules
across settings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.event_receiver import EVENTS_SECRET
from voice_gateway.settings import Settings, ascii_host, describe_settings_error

REQUIRED: dict[str, Any] = {
    "livekit_url": "http://lk:7880",
    "livekit_api_key": "k",
    "livekit_api_secret": "s",
}


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(**(REQUIRED | values))
    return describe_settings_error(refused.value)


def test_defaults_are_a_fifteen_minute_token_and_a_thirty_second_reaper() -> None:
    settings = Settings(**REQUIRED)

    assert (settings.token_ttl_s, settings.reaper_interval_s) == (900, 30)
    assert settings.default_agent is None


def test_a_token_ttl_under_two_minutes_is_refused() -> None:
    assert "VOICE_GATEWAY_TOKEN_TTL_S" in refusal(token_ttl_s=119)


def test_a_token_outliving_its_session_is_refused() -> None:
    problem = refusal(token_ttl_s=3600, token_session_hours=0.5)

    assert (
        problem == "invalid settings: VOICE_GATEWAY_TOKEN_TTL_S exceeds the token session's length"
    )


def test_a_token_session_longer_than_the_maximum_is_refused() -> None:
    problem = refusal(token_session_hours=3, max_session_hours=2)

    assert "VOICE_GATEWAY_TOKEN_SESSION_HOURS" in problem


def test_a_default_agent_outside_the_allowlist_is_refused() -> None:
    problem = refusal(default_agent="root-agent", allowed_agents="pm-agent")

    assert "VOICE_GATEWAY_DEFAULT_AGENT" in problem


def test_an_empty_default_agent_means_none() -> None:
    assert Settings(**(REQUIRED | {"default_agent": ""})).default_agent is None


def test_the_env_example_is_valid_settings(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parents[1] / ".env.example", tmp_path / ".env")

    settings = Settings(_env_file=tmp_path / ".env")

    assert settings.token_ttl_s == 900


def test_the_session_time_limits_default_to_two_minutes_twenty_and_thirty_seconds() -> None:
    settings = Settings(**REQUIRED)

    assert (settings.user_join_timeout_s, settings.solo_timeout_s) == (120, 20)
    assert (settings.agent_join_timeout_s, settings.agent_wait_s) == (30, 10)


def test_the_former_names_of_the_livekit_timeouts_are_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICE_GATEWAY_EMPTY_TIMEOUT_S", "77")
    monkeypatch.setenv("VOICE_GATEWAY_DEPARTURE_TIMEOUT_S", "9")

    settings = Settings(**REQUIRED)

    assert (settings.user_join_timeout_s, settings.solo_timeout_s) == (77, 9)


def test_a_wait_for_the_agent_past_a_minute_is_refused() -> None:
    assert "VOICE_GATEWAY_AGENT_WAIT_S" in refusal(agent_wait_s=61)


def test_an_empty_session_cap_means_no_cap() -> None:
    settings = Settings(**(REQUIRED | {"max_sessions": "", "max_sessions_per_user": " "}))

    assert (settings.max_sessions, settings.max_sessions_per_user) == (None, None)


def test_a_session_cap_under_one_is_refused() -> None:
    assert "VOICE_GATEWAY_MAX_SESSIONS_PER_AGENT" in refusal(max_sessions_per_agent=0)


def test_a_reservation_grace_longer_than_a_token_lives_is_refused() -> None:
    problem = refusal(reservation_grace_s=901)

    assert "VOICE_GATEWAY_RESERVATION_GRACE_S exceeds VOICE_GATEWAY_TOKEN_TTL_S" in problem


def test_events_are_off_without_a_url_and_default_to_5_s_and_a_day() -> None:
    settings = Settings(**REQUIRED)

    assert not settings.events_configured
    assert (settings.events_timeout_s, settings.events_retry_for_s) == (5, 86400)


def test_a_url_without_a_secret_is_refused() -> None:
    assert "VOICE_GATEWAY_EVENTS_SECRET must be set" in refusal(events_url="http://app/events")


def test_a_secret_that_is_not_whsec_is_refused_without_echoing_it() -> None:
    problem = refusal(events_url="http://app/events", events_secret="hunter2-hunter2")

    assert "VOICE_GATEWAY_EVENTS_SECRET is invalid" in problem
    assert "hunter2" not in problem


def test_several_urls_are_comma_separated_and_must_be_http() -> None:
    settings = Settings(
        **REQUIRED, events_url="http://a/e, https://b/e", events_secret=EVENTS_SECRET
    )

    assert settings.events_url == ["http://a/e", "https://b/e"]
    assert "VOICE_GATEWAY_EVENTS_URL" in refusal(events_url="ftp://a", events_secret=EVENTS_SECRET)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://app/hooks/new events", "must not hold spaces or control characters"),
        ("http://app/hooks\r\nX-Injected: 1", "must not hold spaces or control characters"),
        ("http://app:99999/hooks", "must name a host (and a port from 1 to 65535)"),
        ("http://:8000/hooks", "must name a host (and a port from 1 to 65535)"),
        ("http://app:0/hooks", "must name a host (and a port from 1 to 65535)"),
        ("http://app..example/hooks", "must name a host (and a port from 1 to 65535)"),
        (f"http://{'a' * 64}.example/hooks", "must name a host (and a port from 1 to 65535)"),
        ("http://\u2603.example/hooks", "must name a host (and a port from 1 to 65535)"),
    ],
)
def test_an_events_url_that_cannot_go_on_a_request_line_is_refused(url: str, says: str) -> None:
    problem = refusal(events_url=f"http://ok/e,{url}", events_secret=EVENTS_SECRET)

    assert problem.startswith("invalid settings: VOICE_GATEWAY_EVENTS_URL is invalid")
    assert f"entry 2 {says}" in problem


def test_an_events_lease_shorter_than_two_sends_is_refused_with_redis_only() -> None:
    short: dict[str, Any] = {
        "events_url": "http://app/events",
        "events_secret": EVENTS_SECRET,
        "events_timeout_s": 5,
        "events_lease_s": 11,
    }

    problem = refusal(**short, redis_url="redis://127.0.0.1:6379/0")
    in_memory = Settings(**(REQUIRED | short))  # no leases without Redis

    assert "VOICE_GATEWAY_EVENTS_LEASE_S must be at least 2 x" in problem
    assert in_memory.events_lease_s == 11


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:abc",  # a port that is not a number
        "redis://[::1",  # an unclosed IPv6 literal
        "http://localhost:6379",  # not Redis
        "redis://:hunter2@/0",  # no host
        "redis://localhost:6379/zero",  # a db that is not a number
    ],
)
def test_a_redis_url_that_cannot_be_one_is_refused_without_echoing_it(url: str) -> None:
    problem = refusal(redis_url=url)

    assert "VOICE_GATEWAY_REDIS_URL" in problem
    assert url not in problem
    assert "hunter2" not in problem


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:p%40ss@redis:6379",
        "rediss://user:pass@redis.example.com/3",
        "redis://[::1]:6379/0",
    ],
)
def test_redis_urls_of_every_documented_shape_are_taken(url: str) -> None:
    settings = Settings(**(REQUIRED | {"redis_url": url}))

    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == url


@pytest.mark.parametrize(
    ("host", "sent"),
    [
        ("app.example", "app.example"),
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008, as browsers: the 2003 codec said fass.de
        ("bücher.de", "xn--bcher-kva.de"),
        ("ДОМЕН.рф", "xn--d1acufc.xn--p1ai"),
    ],
)
def test_an_events_hosts_name_goes_on_the_wire_as_browsers_send_it(host: str, sent: str) -> None:
    assert ascii_host(host) == sent
