"""LiveKit's own JS client (`livekit-client` from npm, in Node) against the running gateway.

`TokenSource.endpoint(url, {headers})`, with an end user's JWT in the headers, fetches from a real
uvicorn gateway on a free port: once, again from its cache, then forced, as `useSession` does
after a disconnect. The test installs the client itself (`npm ci` from the committed lock file,
into tests/js/node_modules); it skips only where Node.js or npm is absent.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.gateway import serving_gateway
from tests.support.identity_provider import hs256_token, secret_settings
from voice_gateway.standin import StandIn

pytestmark = pytest.mark.slow

JS_DIR = Path(__file__).parent / "js"
SCRIPT = JS_DIR / "token_source.mjs"
STAMP = JS_DIR / "node_modules" / ".installed-from-lock-sha256"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
NPM_TIMEOUT_S = 300
NODE_TIMEOUT_S = 60


def installed_client() -> str:
    """The path to `node`, with livekit-client installed exactly as locked."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed, so LiveKit's JS client cannot run here")
    lock = hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != lock:
        command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(command, cwd=JS_DIR, check=True, timeout=NPM_TIMEOUT_S)  # noqa: S603
        STAMP.write_text(lock)
    return node


async def run_client(node: str, standin: StandIn) -> dict[str, Any]:
    # End users authenticate with the app's own JWT, passed in TokenSource.endpoint's headers.
    settings = secret_settings(standin, allowed_agents="pm-agent")
    authorization = f"Bearer {hs256_token('ada')}"
    async with serving_gateway(settings) as url:
        command = [node, str(SCRIPT), f"{url}/api/voice/token", authorization]
        with anyio.fail_after(NODE_TIMEOUT_S):
            done = await anyio.run_process(command, cwd=JS_DIR, check=False)
    assert done.returncode == 0, done.stderr.decode()
    answers: dict[str, Any] = json.loads(done.stdout)
    return answers


@pytest.fixture(scope="module")
def answers(standin: StandIn) -> dict[str, Any]:
    node = installed_client()
    result: dict[str, Any] = anyio.run(run_client, node, standin)
    return result


def test_the_client_gets_a_token_for_the_authenticated_end_user(
    answers: dict[str, Any],
) -> None:
    first = answers["first"]

    assert (first["identity"], first["name"]) == ("ada", "Ada")


def test_the_token_joins_a_fresh_gateway_room(answers: dict[str, Any]) -> None:
    first = answers["first"]

    assert first["roomJoin"] is True
    assert re.fullmatch(f"foundry_{UUID}", first["room"])
    assert first["roomConfigName"] == first["room"]


def test_the_token_dispatches_the_agent_the_client_named(answers: dict[str, Any]) -> None:
    assert answers["first"]["agents"] == [
        {"agentName": "pm-agent", "metadata": '{"topic":"billing"}'}
    ]


def test_the_client_reads_the_server_url(answers: dict[str, Any], standin: StandIn) -> None:
    assert answers["first"]["serverUrl"] == standin.url.replace("http://", "ws://")


def test_the_client_keeps_its_token_for_the_same_options(answers: dict[str, Any]) -> None:
    assert answers["cached"] == answers["first"]


def test_a_forced_refetch_gets_a_new_room_with_the_agent_again(answers: dict[str, Any]) -> None:
    first, refetched = answers["first"], answers["refetched"]

    assert refetched["room"] != first["room"]
    assert refetched["agents"] == first["agents"]


def test_the_token_outlives_the_clients_refresh_margin(answers: dict[str, Any]) -> None:
    # The client refetches a token 60 s before it expires; 15 minutes leaves it 14.
    assert answers["first"]["ttlSeconds"] == 15 * 60
