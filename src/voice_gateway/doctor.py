"""`voice-gateway doctor`: checks settings and LiveKit, and says in plain words what is wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from livekit import api

from .errors import GatewayError
from .metrics import Metrics
from .service import SessionService, open_session_service
from .settings import Settings
from .tokens import JoinGrant

MIN_SECRET_LENGTH = 32
Check = Callable[[SessionService], Awaitable[str]]


def settings_problems(settings: Settings, *, dev: bool = False) -> list[str]:
    """Problems that make the settings unfit for production (dev tolerates them)."""
    problems = []
    if not dev and len(settings.livekit_api_secret.get_secret_value()) < MIN_SECRET_LENGTH:
        problems.append(
            f"LIVEKIT_API_SECRET is shorter than {MIN_SECRET_LENGTH} characters; "
            "use a long random secret outside development."
        )
    return problems


async def run_checks(settings: Settings) -> list[tuple[bool, str]]:
    """Each check's outcome as (passed, one plain sentence)."""
    results = [(False, problem) for problem in settings_problems(settings)]
    async with open_session_service(settings, Metrics()) as sessions:
        for check in (_reach_livekit, _mint_and_verify_token):
            results.append(await _outcome(check, sessions))
    return results


async def _outcome(check: Check, sessions: SessionService) -> tuple[bool, str]:
    try:
        return True, await check(sessions)
    except GatewayError as exc:
        return False, exc.detail + "."
    except Exception as exc:  # doctor reports every failure as a sentence
        return False, f"{check.__doc__} failed: {type(exc).__name__}."


async def _reach_livekit(sessions: SessionService) -> str:
    """Reaching LiveKit"""
    await sessions.check_livekit()
    return "LiveKit answers and accepts the API key and secret."


async def _mint_and_verify_token(sessions: SessionService) -> str:
    """Minting and verifying a test token"""
    now = datetime.now(UTC).replace(microsecond=0)
    grant = JoinGrant(
        "doctor", "voice-gateway-doctor", api.RoomConfiguration(), now, now + timedelta(minutes=1)
    )
    claims = await sessions.signer.verify(await sessions.signer.sign(grant))
    if claims.identity != "doctor":
        raise GatewayError("A test token did not verify with the configured secret")
    return "A test join token was minted and verified with the configured secret."
