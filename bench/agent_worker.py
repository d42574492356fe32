"""The example agent (examples/agent/agent.py) as a LiveKit Agents worker process, registered with
the benchmark's real server under the benchmark's agent name."""

from __future__ import annotations

import sys
import time

from .children import REPO_ROOT, Child, Children, StartFailure
from .targets import Credentials, child_env

AGENT = REPO_ROOT / "examples" / "agent" / "agent.py"
AGENT_NAME = "bench-agent"
REGISTER_TIMEOUT_S = 60.0  # a cold import of the SDK takes a few seconds
# It drains its jobs on SIGTERM (the example's drain_timeout is 5 s).
STOP_GRACE_S = 10.0
REGISTERED = "registered worker"
# The SDK reads these too (a proxy would carry its loopback WebSocket): none from our shell.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def start_agent_worker(children: Children, ws_url: str, creds: Credentials) -> Child:
    """The worker, once the server has registered it (a job dispatched before is dropped)."""
    argv = [
        sys.executable, "-m", "livekit.agents", "start", str(AGENT), "--url", ws_url,
        f"--api-key={creds.livekit_key}", f"--api-secret={creds.livekit_secret}",
        "--log-level", "INFO",
    ]  # fmt: skip
    env = {k: v for k, v in child_env().items() if k not in PROXY_VARIABLES}
    env |= {"LIVEKIT_AGENT_NAME": AGENT_NAME, "PYTHONUNBUFFERED": "1"}
    worker = children.start("agent-worker", argv, env, stop_grace_s=STOP_GRACE_S)
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while REGISTERED not in worker_log(worker):
        if worker.process.poll() is not None:
            raise StartFailure(f"the agent worker exited with {worker.process.returncode}")
        if time.monotonic() > deadline:
            raise StartFailure(f"the agent worker did not register in {REGISTER_TIMEOUT_S:g} s")
        time.sleep(0.05)
    return worker


def worker_log(worker: Child) -> str:
    try:
        return worker.log_path.read_text(errors="replace")
    except OSError:
        return ""


def jobs_seen(worker: Child) -> tuple[int, int]:
    """Jobs the example agent logged: (dispatched into a room, left a room)."""
    log = worker_log(worker)
    return log.count("dispatched into foundry_"), log.count("left foundry_")
