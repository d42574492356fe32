"""What `serve` loads before its first request: the Redis client (coredis, and numpy through it)
and httpx only when a setting asks for them, and never the `livekit.api` package, whose
`__init__` imports aiohttp and every service client of the SDK (bench/README.md, measured
decisions: each was a large share of the start-up). Merging the events CLI once brought coredis
back into every start."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = ("coredis", "numpy", "httpx", "aiohttp", "livekit.api")
LOADED = f"""
import sys
import voice_gateway.cli, voice_gateway.web.app
print(",".join(name for name in {DEFERRED!r} if name in sys.modules))
"""
# The SDK's token and webhook modules, loaded from their files by voice_gateway.livekit.api, are
# the very modules `livekit.api` re-exports once something imports the whole SDK.
SHARED = """
from voice_gateway.livekit import api
from livekit import api as sdk
from livekit.api import access_token, webhook
print(api.AccessToken is sdk.AccessToken is access_token.AccessToken,
      api.Claims is access_token.Claims,
      api.WebhookReceiver is sdk.WebhookReceiver is webhook.WebhookReceiver,
      api.TokenVerifier is sdk.TokenVerifier)
"""


def _run(script: str) -> str:
    answer = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return answer.stdout.strip()


def test_the_cli_and_the_app_load_neither_redis_nor_httpx_nor_aiohttp_unasked() -> None:
    assert _run(LOADED) == ""


def test_the_sdk_loaded_later_shares_the_gateways_token_and_webhook_classes() -> None:
    assert _run(SHARED) == "True True True True"


def test_an_sdk_module_that_fails_to_load_leaves_nothing_behind() -> None:
    failing = """
import sys
from voice_gateway.livekit.api import sdk_module
try:
    sdk_module("no_such_module")
except FileNotFoundError:
    print("livekit.api.no_such_module" in sys.modules, "livekit.api" in sys.modules)
"""
    assert _run(failing) == "False False"


def test_once_the_whole_sdk_is_loaded_its_modules_are_imported_as_usual() -> None:
    loaded = """
import livekit.api, sys
from voice_gateway.livekit.api import sdk_module
print(sdk_module("version") is sys.modules["livekit.api.version"])
try:
    sdk_module("no_such_module")
except ModuleNotFoundError as exc:
    print(exc.name)
"""
    assert _run(loaded).split() == ["True", "livekit.api.no_such_module"]
