"""`voice-gateway doctor`: checks settings and LiveKit, and says in plain words what is wrong."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from jwt.warnings import InsecureKeyLengthWarning

from .access.jwks import download_jwks
from .access.rate_limits import check_store
from .access.service_keys import HASHED_PREFIX
from .errors import GatewayError, LiveKitUnavailable
from .livekit import api
from .livekit.clients import LiveKit, open_livekit
from .livekit.join_tokens import JoinGrant
from .ops.metrics import Metrics
from .settings import Settings

MIN_SECRET_LENGTH = 32
MIN_SERVICE_KEY_LENGTH = 16
Check = Callable[[], Awaitable[str]]
NO_AUTHENTICATION = (
    "No caller authentication is configured: set VOICE_GATEWAY_API_KEYS (service keys) and/or "
    "VOICE_GATEWAY_JWT_JWKS_URL or VOICE_GATEWAY_JWT_SECRET (end-user tokens); "
    "only `voice-gateway dev` runs open."
)


def settings_problems(settings: Settings, *, dev: bool = False) -> list[str]:
    """Problems that make the settings unfit for production (dev tolerates them)."""
    if dev:
        return []
    problems = []
    if len(settings.livekit_api_secret.get_secret_value()) < MIN_SECRET_LENGTH:
        problems.append(
            f"LIVEKIT_API_SECRET is shorter than {MIN_SECRET_LENGTH} characters; "
            "use a long random secret outside development."
        )
    if not settings.authentication_configured:
        problems.append(NO_AUTHENTICATION)
    if short := _short_service_keys(settings):
        problems.append(
            f"VOICE_GATEWAY_API_KEYS entry {', '.join(map(str, short))} is shorter than "
            f"{MIN_SERVICE_KEY_LENGTH} characters; use long random keys (openssl rand -hex 32)."
        )
    problems += _user_secret_problems(settings)
    return problems


def _user_secret_problems(settings: Settings) -> list[str]:
    if settings.jwt_secret is None:
        return []
    secret = settings.jwt_secret.get_secret_value()
    if len(secret) < MIN_SECRET_LENGTH:
        return [f"VOICE_GATEWAY_JWT_SECRET is shorter than {MIN_SECRET_LENGTH} characters."]
    if secret == settings.livekit_api_secret.get_secret_value():
        # Whoever holds one must not be able to sign for the other.
        return ["VOICE_GATEWAY_JWT_SECRET must not be the LiveKit secret."]
    return []


def _short_service_keys(settings: Settings) -> list[int]:
    entries = [key.get_secret_value() for key in settings.api_keys]
    return [
        number
        for number, entry in enumerate(entries, start=1)
        if not entry.startswith(HASHED_PREFIX) and len(entry) < MIN_SERVICE_KEY_LENGTH
    ]


async def run_checks(settings: Settings) -> list[tuple[bool, str]]:
    """Each check's outcome as (passed, one plain sentence)."""
    problems = settings_problems(settings)
    results = [(False, problem) for problem in problems]
    if settings.authentication_configured:
        results.append((True, describe_authentication(settings)))
    async with open_livekit(settings, Metrics()) as livekit:
        checks = (*_livekit_checks(livekit, settings.livekit_url), *_access_checks(settings))
        for check in checks:
            results.append(await _outcome(check))
    return results


def describe_authentication(settings: Settings) -> str:
    ways = []
    if settings.api_keys:
        ways.append(f"{len(settings.api_keys)} service key(s)")
    if settings.end_user_tokens_configured:
        source = "a JWKS" if settings.jwt_jwks_url else "a shared secret"
        algorithms = ", ".join(settings.end_user_algorithms)
        ways.append(f"end-user JWTs from {settings.jwt_issuer} ({algorithms}, {source})")
    return "Callers authenticate with " + " and ".join(ways) + "."


async def _outcome(check: Check) -> tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            # A short secret is reported above as a sentence; PyJWT's warning would add a
            # traceback-like line to the terminal for the same thing.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return True, await check()
    except GatewayError as exc:
        return False, exc.detail + "."
    except Exception as exc:  # doctor reports every failure as a sentence
        return False, f"{check.__doc__} failed: {type(exc).__name__}."


def _livekit_checks(livekit: LiveKit, url: str) -> list[Check]:
    async def reach_livekit() -> str:
        """Reaching LiveKit"""
        try:
            await livekit.rooms.check_access()
        except LiveKitUnavailable as exc:  # here, unlike in an answer to a caller, say where
            raise LiveKitUnavailable(f"{exc.detail} at {url}") from exc
        return "LiveKit answers and accepts the API key and secret."

    async def mint_and_verify_token() -> str:
        """Minting and verifying a test token"""
        now = datetime.now(UTC).replace(microsecond=0)
        expiry = now + timedelta(minutes=1)
        grant = JoinGrant("doctor", "voice-gateway-doctor", api.RoomConfiguration(), now, expiry)
        signer = livekit.join_tokens
        claims = await signer.verify(await signer.sign(grant))
        if claims.identity != "doctor":
            raise GatewayError("A test token did not verify with the configured secret")
        return "A test join token was minted and verified with the configured secret."

    return [reach_livekit, mint_and_verify_token]


def _access_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    if (url := settings.jwt_jwks_url) is not None:

        async def read_jwks() -> str:
            """Reading the identity provider's keys"""
            import httpx  # doctor only: serve imports it only once a JWKS is configured

            async with httpx.AsyncClient(timeout=settings.jwt_jwks_timeout_s) as client:
                keys = await download_jwks(client, url, settings.jwt_jwks_timeout_s)
            if not keys:
                raise GatewayError(f"{url} lists no signing keys")
            return f"The identity provider's JWKS lists {len(keys)} signing key(s)."

        checks.append(read_jwks)
    if settings.redis_url is not None:

        async def reach_redis() -> str:
            """Reaching Redis"""
            if not await check_store(settings):
                raise GatewayError("Redis (VOICE_GATEWAY_REDIS_URL) does not answer")
            return "Redis answers; rate-limit counters are shared between replicas."

        checks.append(reach_redis)
    return checks
