"""`make run-livekit`: the whole real stack on this machine, for a person to talk to.

The real `livekit-server` (built by `make livekit-server` into .tools/bin/), the gateway (`serve`,
with a service key) in front of it, and the example agent (examples/agent/agent.py) registered
with it. Fresh random credentials each run, nothing written outside .tools/run-livekit/ (the three
logs). Prints how to get a session and join it, then runs until Ctrl-C, and stops all three.

Ports: RUN_LIVEKIT_PORT (7880, LiveKit's API and WebSocket; WebRTC over TCP on the next port and
UDP on the ten after that) and RUN_LIVEKIT_GATEWAY_PORT (8000).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / ".tools" / "bin" / "livekit-server"
LOGS = ROOT / ".tools" / "run-livekit"
AGENT = ROOT / "examples" / "agent" / "agent.py"
AGENT_NAME = "example-agent"
HOST = "127.0.0.1"
READY_WITHIN_S = 60  # a cold import of the agent SDK takes a few seconds

BANNER = """\
==============================================================================
 voice-gateway with the REAL LiveKit server and the example agent
 * LiveKit   {livekit_ws}   (logs: {logs})
 * gateway   {gateway}   (service key below; caller authentication ON)
 * agent     {agent} (plays a 440 Hz tone into every session it is sent to)

 A session (room created, agent dispatched, a join token for the user):
   curl -s -X POST {gateway}/api/voice/session \\
     -H 'Authorization: Bearer {service_key}' -H 'Content-Type: application/json' \\
     -d '{{"user_id": "me", "agent_id": "{agent}"}}'

 Join with the "token" and "livekit_url" it returns, from any LiveKit client:
 LiveKit's Agents Playground (custom URL and token), the `lk` CLI
 (lk room join --url {livekit_ws} --token <token>), or the SDKs.
 LiveKit's TokenSource.endpoint can use {gateway}/api/voice/token.
 Ctrl-C stops all three.
=============================================================================="""


def main() -> int:
    if not BINARY.exists():
        print(
            "make run-livekit: no .tools/bin/livekit-server; install Go >= 1.26 "
            "(https://go.dev/dl/) and run it again, it builds the server once",
            file=sys.stderr,
        )
        return 2
    livekit_port = int(os.environ.get("RUN_LIVEKIT_PORT", "7880"))
    gateway_port = int(os.environ.get("RUN_LIVEKIT_GATEWAY_PORT", "8000"))
    api_key, api_secret = f"dev-{secrets.token_hex(4)}", secrets.token_urlsafe(32)
    service_key = secrets.token_urlsafe(32)
    LOGS.mkdir(parents=True, exist_ok=True)
    livekit_url = f"http://{HOST}:{livekit_port}"
    gateway_url = f"http://{HOST}:{gateway_port}"
    with ExitStack() as stack:
        config = _livekit_config(livekit_port, gateway_port, api_key, api_secret)
        # In the environment (LiveKit's LIVEKIT_CONFIG), not the command line: `ps` shows that.
        livekit_env = _clean_env() | {"LIVEKIT_CONFIG": config}
        stack.enter_context(_child("livekit-server", [str(BINARY)], livekit_env))
        _wait_for(f"{livekit_url}/", "livekit-server")
        gateway_env = _gateway_env(livekit_url, api_key, api_secret, service_key)
        gateway = [sys.executable, "-m", "voice_gateway", "serve", "--host", HOST]
        stack.enter_context(_child("gateway", [*gateway, "--port", str(gateway_port)], gateway_env))
        _wait_for(f"{gateway_url}/readyz", "gateway")
        agent_env = _agent_env(livekit_url, api_key, api_secret)
        agent = [sys.executable, "-m", "livekit.agents", "start", str(AGENT)]
        stack.enter_context(_child("agent", agent, agent_env))
        _wait_for_log(LOGS / "agent.log", "registered worker", "agent")
        print(
            BANNER.format(
                livekit_ws=f"ws://{HOST}:{livekit_port}",
                gateway=gateway_url,
                agent=AGENT_NAME,
                service_key=service_key,
                logs=LOGS.relative_to(ROOT),
            ),
            flush=True,
        )
        _wait_for_a_stop()
    return 0


def _livekit_config(port: int, gateway_port: int, api_key: str, api_secret: str) -> str:
    webhook = f"http://{HOST}:{gateway_port}/api/voice/webhook"
    config = {
        "port": port,
        "bind_addresses": [HOST],
        "rtc": {
            "tcp_port": port + 1,
            "port_range_start": port + 2,
            "port_range_end": port + 11,
            "use_external_ip": False,
            # Media on loopback: clients on this machine reach it (libwebrtc pairs the server's
            # 127.0.0.1 with the client's own interface address).
            "node_ip": HOST,
        },
        "keys": {api_key: api_secret},
        "webhook": {"api_key": api_key, "urls": [webhook]},
        "logging": {"level": "info"},
    }
    return json.dumps(config)  # JSON is YAML


def _gateway_env(livekit_url: str, key: str, secret: str, service_key: str) -> dict[str, str]:
    return _clean_env() | {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": key,
        "LIVEKIT_API_SECRET": secret,
        "VOICE_GATEWAY_API_KEYS": service_key,
        "VOICE_GATEWAY_ALLOWED_AGENTS": AGENT_NAME,
        "VOICE_GATEWAY_DEFAULT_AGENT": AGENT_NAME,
    }


def _agent_env(livekit_url: str, key: str, secret: str) -> dict[str, str]:
    return _clean_env() | {
        "LIVEKIT_URL": livekit_url.replace("http://", "ws://"),
        "LIVEKIT_API_KEY": key,
        "LIVEKIT_API_SECRET": secret,
        "LIVEKIT_AGENT_NAME": AGENT_NAME,
    }


def _clean_env() -> dict[str, str]:
    # This run's settings only: none of the developer's LIVEKIT_* or VOICE_GATEWAY_* variables.
    prefixes = ("LIVEKIT_", "VOICE_GATEWAY_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@contextmanager
def _child(name: str, command: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    with (LOGS / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  # our own children, from fixed arguments
            command,
            env=env,
            cwd=LOGS,  # the gateway would read a .env here: there is none
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        yield
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # each drains: the agent its jobs, the gateway requests
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_for(url: str, name: str) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310  # http only
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    _give_up(name)


def _wait_for_log(log: Path, text: str, name: str) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    _give_up(name)


def _give_up(name: str) -> None:
    log = LOGS / f"{name}.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise SystemExit(f"make run-livekit: the {name} did not become ready; its log ends:\n{tail}")


def _wait_for_a_stop() -> None:
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stopping.append(number))
    try:
        while not stopping:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    # Ctrl-C reaches make, uv and this process alike, and uv passes its own on: the stop that
    # follows must not be interrupted by the second one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("stopping the agent, the gateway and LiveKit", flush=True)


if __name__ == "__main__":
    sys.exit(main())
