"""The `voice-gateway` command as a person runs it: real processes, real ports."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.cli import clean_env, run_cli, running
from tests.support.gateway import SESSION_BODY
from tests.support.keys import API_KEY, API_SECRET, SERVICE_AUTH, SERVICE_KEY
from tests.support.processes import free_port
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow


def test_serve_without_settings_names_the_missing_variable(tmp_path: Path) -> None:
    result = run_cli("serve", env=clean_env(), cwd=tmp_path)

    assert result.returncode == 2
    assert "LIVEKIT_URL is missing" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_with_an_invalid_setting_names_it(tmp_path: Path) -> None:
    env = clean_env(
        LIVEKIT_URL="http://127.0.0.1:1",
        LIVEKIT_API_KEY="k",
        LIVEKIT_API_SECRET="x" * 40,
        VOICE_GATEWAY_LIVEKIT_TIMEOUT_S="soon",
    )
    result = run_cli("serve", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert "VOICE_GATEWAY_LIVEKIT_TIMEOUT_S is invalid" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_short_livekit_secret_without_printing_it(tmp_path: Path) -> None:
    env = clean_env(
        LIVEKIT_URL="http://127.0.0.1:1", LIVEKIT_API_KEY="k", LIVEKIT_API_SECRET="hush"
    )
    result = run_cli("serve", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert "LIVEKIT_API_SECRET" in result.stderr
    assert "hush" not in result.stderr


def test_serve_reads_settings_from_a_dotenv_file(tmp_path: Path, standin: StandIn) -> None:
    port = free_port()
    dotenv = (
        f"LIVEKIT_URL={standin.url}\nLIVEKIT_API_KEY={API_KEY}\nLIVEKIT_API_SECRET={API_SECRET}\n"
        f"VOICE_GATEWAY_API_KEYS={SERVICE_KEY}\n"
    )
    (tmp_path / ".env").write_text(dotenv)
    serve = ("serve", "--host", "127.0.0.1", "--port", str(port))

    with running(*serve, env=clean_env(), cwd=tmp_path, port=port) as base:
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200


def test_dev_answers_the_seed_request(tmp_path: Path) -> None:
    port, livekit_port = free_port(), free_port()
    dev = ("dev", "--port", str(port), "--livekit-port", str(livekit_port))

    with running(*dev, env=clean_env(), cwd=tmp_path, port=port) as base:
        response = httpx.post(f"{base}/api/voice/session", json=SESSION_BODY, timeout=10)

    assert response.status_code == 201
    assert response.json()["room_name"].startswith("foundry_nate_pm-agent_sess_")
    assert response.json()["livekit_url"] == f"ws://localhost:{livekit_port}"


def test_doctor_passes_against_a_healthy_livekit(tmp_path: Path, standin: StandIn) -> None:
    env = clean_env(
        LIVEKIT_URL=standin.url,
        LIVEKIT_API_KEY=API_KEY,
        LIVEKIT_API_SECRET=API_SECRET,
        VOICE_GATEWAY_API_KEYS=SERVICE_KEY,
    )
    result = run_cli("doctor", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "LiveKit answers" in result.stdout
    assert "minted and verified" in result.stdout


def test_doctor_explains_rejected_credentials(tmp_path: Path, standin: StandIn) -> None:
    secret = "a-wrong-secret-that-is-long-enough-1234"
    env = clean_env(LIVEKIT_URL=standin.url, LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=secret)
    result = run_cli("doctor", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert "rejected the gateway's API key or secret" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_doctor_explains_an_unreachable_livekit_in_words(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(LIVEKIT_URL=url, LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET)
    result = run_cli("doctor", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert f"LiveKit could not be reached: connection refused at {url}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "Error" not in result.stdout  # no exception class names


def test_doctor_reports_a_short_secret_without_pyjwts_warning(
    tmp_path: Path, standin: StandIn
) -> None:
    env = livekit_env(standin) | {"LIVEKIT_API_SECRET": "short-secret"}
    result = run_cli("doctor", env=env, cwd=tmp_path)

    assert "LIVEKIT_API_SECRET is shorter than 32 characters" in result.stdout
    assert "InsecureKeyLengthWarning" not in result.stdout + result.stderr


def livekit_env(standin: StandIn, **extra: str) -> dict[str, str]:
    return clean_env(
        LIVEKIT_URL=standin.url, LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET=API_SECRET, **extra
    )


def test_serve_refuses_to_start_without_caller_authentication(
    tmp_path: Path, standin: StandIn
) -> None:
    result = run_cli("serve", env=livekit_env(standin), cwd=tmp_path)

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "No caller authentication is configured" in result.stderr
    assert "VOICE_GATEWAY_API_KEYS" in result.stderr


def test_serve_refuses_a_short_service_key_without_printing_it(
    tmp_path: Path, standin: StandIn
) -> None:
    result = run_cli(
        "serve", env=livekit_env(standin, VOICE_GATEWAY_API_KEYS="hunter2"), cwd=tmp_path
    )

    assert result.returncode == 2
    assert "VOICE_GATEWAY_API_KEYS entry 1 is shorter" in result.stderr
    assert "hunter2" not in result.stderr


def test_doctor_reports_missing_caller_authentication(tmp_path: Path, standin: StandIn) -> None:
    result = run_cli("doctor", env=livekit_env(standin), cwd=tmp_path)

    assert result.returncode == 1
    assert "PROBLEM  No caller authentication is configured" in result.stdout


def test_serve_asks_callers_for_credentials(tmp_path: Path, standin: StandIn) -> None:
    port = free_port()
    env = livekit_env(standin, VOICE_GATEWAY_API_KEYS=SERVICE_KEY)
    serve = ("serve", "--host", "127.0.0.1", "--port", str(port))

    with running(*serve, env=env, cwd=tmp_path, port=port) as base:
        anonymous = httpx.post(f"{base}/api/voice/session", json=SESSION_BODY, timeout=10)
        service = httpx.post(
            f"{base}/api/voice/session", json=SESSION_BODY, headers=SERVICE_AUTH, timeout=10
        )

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert service.status_code == 201


def test_dev_says_that_authentication_is_off(tmp_path: Path) -> None:
    port, livekit_port = free_port(), free_port()
    dev = ("dev", "--port", str(port), "--livekit-port", str(livekit_port))
    printed: list[str] = []
    with running(*dev, env=clean_env(), cwd=tmp_path, port=port, output=printed):
        pass
    output = printed[0]

    assert "caller authentication is OFF" in output
