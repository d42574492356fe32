"""What the benchmark loads: the gateway in front of the LiveKit stand-in or the real
livekit-server, or the bare ceiling.

Each runs as a real process (the venv's Python) on 127.0.0.1, in a scratch working directory so a
developer's `.env` cannot change what is measured, with LiveKit and gateway variables reset.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from .children import HOST, REPO_ROOT, Child, Children, StartFailure, free_port, wait_until_ready
from .livekit_server import start_livekit_server
from .scenarios import Backend

STARTUP_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 15.0
# The real server keeps every room it is asked to create until it has been empty this long
# (the gateway's default: 300 s). Never-joined rooms close after it, so a short one keeps the
# server at a steady state (about rate x this many rooms) instead of piling up every room of the
# run; rooms closing is work a production server does too.
REAL_EMPTY_TIMEOUT_S = 5
SESSION_PATH = "/api/voice/session"
LOOP_LAG_INTERVAL_S = 0.05
PROBE_BODY = {"user_id": "bench-probe", "agent_id": "pm-agent", "session_duration_hours": 1}
CREATED_FIELDS = {"session_id", "room_name", "token", "livekit_url", "expires_at"}


@dataclass(frozen=True)
class Credentials:
    """Fresh per run: LiveKit's key pair (the secret long enough for `serve`) and a caller key."""

    livekit_key: str = "devkey"
    livekit_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    caller_key: str = field(default_factory=lambda: "bench-" + secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    processes: Mapping[str, Child]  # by role: "server", and "livekit" behind the gateway
    livekit: str = "-"  # what answered the gateway's LiveKit calls, as the table shows it
    livekit_latency_ms: int | None = None  # the stand-in's, per call; None: no stand-in
    startup_s: float | None = None  # from exec to the first `/healthz` 200

    @property
    def session_url(self) -> str:
        return self.base_url + SESSION_PATH


@dataclass(frozen=True)
class Probe:
    body_bytes: int
    token_length: int


def start_gateway(
    children: Children,
    creds: Credentials,
    backend: Backend,
    latency_ms: int,
    label: str,
    src: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Target:
    """`src`: a source tree whose `src/` is imported instead of this checkout's (A/B runs);
    `settings`: environment added to the gateway's."""
    if backend == "livekit-server":
        livekit, livekit_url = start_livekit_server(
            children, f"{label}-livekit-server", child_env(), creds.livekit_key,
            creds.livekit_secret,
        )  # fmt: skip
        described: str = backend
        latency: int | None = None
        extra = {"VOICE_GATEWAY_USER_JOIN_TIMEOUT_S": str(REAL_EMPTY_TIMEOUT_S)}
    else:
        livekit, livekit_url = start_standin(children, creds, latency_ms, label)
        described, latency, extra = f"stand-in {latency_ms} ms", latency_ms, {}
    extra = {**extra, **(settings or {})}
    if src is not None:
        extra = {**extra, "PYTHONPATH": os.path.join(src, "src")}
    started = time.monotonic()
    gateway, base_url = start_gateway_process(children, creds, livekit_url, label, extra)
    startup_s = time.monotonic() - started
    processes = {"server": gateway, "livekit": livekit}
    return Target("gateway", base_url, processes, described, latency, startup_s)


def start_event_sink(children: Children, label: str) -> str:
    """A receiver of session events (bench/event_sink.py); its URL."""
    port = free_port()
    sink = children.start(
        f"{label}-event-sink",
        [sys.executable, "-m", "bench.event_sink", "--host", HOST, "--port", str(port)],
        child_env({"PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH"))}),
    )  # fmt: skip
    url = f"http://{HOST}:{port}/"
    wait_until_ready(sink, url, STARTUP_TIMEOUT_S)
    return url


def events_env(sink_url: str) -> dict[str, str]:
    """Session events on, to the sink, signed as in production."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return {"VOICE_GATEWAY_EVENTS_URL": sink_url, "VOICE_GATEWAY_EVENTS_SECRET": secret}


def start_baseline(children: Children, creds: Credentials, latency_ms: int, label: str) -> Target:
    """The naive app (bench/baseline.py) in front of a stand-in of its own."""
    livekit, livekit_url = start_standin(children, creds, latency_ms, label)
    port = free_port()
    env = {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": creds.livekit_key,
        "LIVEKIT_API_SECRET": creds.livekit_secret,
        "PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH")),
    }
    started = time.monotonic()
    baseline = children.start(
        f"{label}-baseline",
        [sys.executable, "-m", "bench.baseline", "--host", HOST, "--port", str(port)],
        child_env(env),
    )  # fmt: skip
    base_url = f"http://{HOST}:{port}"
    wait_until_ready(baseline, base_url + "/healthz", STARTUP_TIMEOUT_S)
    processes = {"server": baseline, "livekit": livekit}
    startup_s = time.monotonic() - started
    return Target(
        "baseline", base_url, processes, f"stand-in {latency_ms} ms", latency_ms, startup_s
    )


def start_gateway_process(
    children: Children,
    creds: Credentials,
    livekit_url: str,
    label: str,
    extra: Mapping[str, str],
    port: int | None = None,
) -> tuple[Child, str]:
    """`voice_gateway serve` in front of `livekit_url`, ready, and its base URL; `extra` adds
    or overrides settings, `port` is one picked beforehand (the webhook URL names it)."""
    gateway_port = port or free_port()
    gateway = children.start(
        f"{label}-gateway",
        [sys.executable, "-m", "voice_gateway", "serve", "--host", HOST,
         "--port", str(gateway_port)],
        child_env({**gateway_env(creds, livekit_url), **extra}),
    )  # fmt: skip
    base_url = f"http://{HOST}:{gateway_port}"
    wait_until_ready(gateway, base_url + "/healthz", STARTUP_TIMEOUT_S)
    return gateway, base_url


def start_standin(
    children: Children, creds: Credentials, latency_ms: int, label: str
) -> tuple[Child, str]:
    port = free_port()
    # `--name=value`: a secret from token_urlsafe may begin with "-", which argparse would read
    # as an option (the bench then failed to start a stand-in, one run in ~64 per stand-in).
    standin = children.start(
        f"{label}-standin",
        [sys.executable, "-m", "voice_gateway.standin", "--host", HOST,
         "--port", str(port), f"--api-key={creds.livekit_key}",
         f"--api-secret={creds.livekit_secret}", "--latency-ms", str(latency_ms)],
        child_env(),
    )  # fmt: skip
    url = f"http://{HOST}:{port}"
    wait_until_ready(standin, url + "/", STARTUP_TIMEOUT_S)
    return standin, url


def start_ceiling(children: Children, token_length: int, label: str) -> Target:
    port = free_port()
    ceiling = children.start(
        f"{label}-ceiling",
        [sys.executable, "-m", "bench.ceiling", "--host", HOST, "--port", str(port),
         "--token-length", str(token_length)],
        child_env({"PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH"))}),
    )  # fmt: skip
    base_url = f"http://{HOST}:{port}"
    wait_until_ready(ceiling, base_url + "/healthz", STARTUP_TIMEOUT_S)
    return Target("ceiling", base_url, {"server": ceiling})


def gateway_env(creds: Credentials, livekit_url: str) -> dict[str, str]:
    return {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": creds.livekit_key,
        "LIVEKIT_API_SECRET": creds.livekit_secret,
        # `serve` refuses to start without caller authentication; a service key, as a backend
        # would send, is not rate limited unless VOICE_GATEWAY_RATE_LIMIT_SERVICE says so.
        "VOICE_GATEWAY_API_KEYS": creds.caller_key,
        # Rate limits on, in memory, for the bench's service key too (by default a service key is
        # not limited): every request pays the limiter, as an end user's does. Never reached.
        "VOICE_GATEWAY_RATE_LIMIT_SERVICE": "5000/second",
        # No load balancer to wait for: stop as soon as requests in flight are done.
        "VOICE_GATEWAY_SHUTDOWN_DELAY_S": "0",
        # Enough samples of the loop-lag monitor in a 10 s run for a p99 (200, not 20).
        "VOICE_GATEWAY_LOOP_LAG_INTERVAL_S": str(LOOP_LAG_INTERVAL_S),
    }


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without any LiveKit or gateway setting, plus `extra`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LIVEKIT_", "VOICE_GATEWAY_"))
    }
    return {**inherited, **(extra or {})}


def _with_repo_root(python_path: str | None) -> str:
    # Children run in a scratch directory, so `bench` is importable only through PYTHONPATH.
    return os.pathsep.join(filter(None, [str(REPO_ROOT), python_path]))


def probe_session(target: Target, creds: Credentials) -> Probe:
    """One session before the load: the target must answer 201 with every field."""
    headers = {"Authorization": f"Bearer {creds.caller_key}"}
    try:
        answer = httpx.post(
            target.session_url, json=PROBE_BODY, headers=headers, timeout=PROBE_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise StartFailure(f"{target.name}: probe session failed: {exc!r}") from exc
    if answer.status_code != 201:
        raise StartFailure(
            f"{target.name}: probe answered {answer.status_code}: {answer.text[:300]}"
        )
    created = answer.json()
    if missing := CREATED_FIELDS - created.keys():
        raise StartFailure(f"{target.name}: probe answer lacks {sorted(missing)}")
    return Probe(body_bytes=len(answer.content), token_length=len(created["token"]))
