"""The example agent's image (examples/agent/Dockerfile): read as Docker reads it, its HEALTHCHECK
run against a server, and its install step replayed from its build context alone, then the
installed worker registered with the real LiveKit server, checked and stopped as compose does."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.keys import API_KEY, API_SECRET
from tests.support.livekit_server import livekit_server
from tests.support.processes import free_port
from tests.support.repo_files import (
    ROOT,
    compose_interpolate,
    docker_build_context,
    dockerfile_stages,
    dockerignore_excludes,
    dockerignore_patterns,
    read_yaml,
)

DOCKERFILE = "examples/agent/Dockerfile"
IGNORE_FILE = f"{DOCKERFILE}.dockerignore"
STAGES = dockerfile_stages(DOCKERFILE)
BUILD, RUNTIME = STAGES[0], STAGES[-1]
COMPOSE_AGENT = read_yaml("compose.yaml")["services"]["agent"]
ENTRYPOINT = ["python", "-m", "livekit.agents", "start", "agent.py"]
# Only the gateway needs these: the agent's image must not carry them.
GATEWAY_ONLY = ("voice_gateway", "starlette", "uvicorn", "limits", "pytest")


def test_the_image_is_built_in_stages_on_the_gateways_python() -> None:
    assert [stage.name for stage in STAGES] == ["build", "runtime"]
    assert _arg_default(DOCKERFILE, "PYTHON_IMAGE") == _arg_default("Dockerfile", "PYTHON_IMAGE")


def test_it_installs_the_e2e_group_of_the_committed_lock_and_nothing_else() -> None:
    syncs = [i.arguments for i in BUILD.all("RUN") if "uv sync" in i.arguments]

    assert syncs
    assert all("--locked" in sync and "--only-group e2e" in sync for sync in syncs)
    assert [i.arguments for i in BUILD.all("COPY")] == ["pyproject.toml uv.lock ./"]


def test_it_pins_the_same_uv_as_the_makefile() -> None:
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)

    assert makefile_uv is not None
    assert _arg_default(DOCKERFILE, "UV_VERSION") == makefile_uv.group(1)


def test_the_runtime_holds_the_virtualenv_and_the_agent_only() -> None:
    copied = [i.arguments for i in RUNTIME.all("COPY")]

    assert copied == ["--from=build /app/.venv /app/.venv", "examples/agent/agent.py /app/agent.py"]
    assert RUNTIME.last("WORKDIR").arguments == "/app"


def test_the_runtime_runs_as_a_numeric_non_root_user() -> None:
    user, _, group = RUNTIME.last("USER").arguments.partition(":")

    assert int(user) > 0
    assert int(group) > 0


def test_the_worker_runs_in_exec_form_and_drains_on_sigterm() -> None:
    assert RUNTIME.last("ENTRYPOINT").exec_form() == ENTRYPOINT
    assert not RUNTIME.all("CMD")
    assert RUNTIME.last("STOPSIGNAL").arguments == "SIGTERM"


@pytest.mark.parametrize(
    "path",
    [
        "src/voice_gateway/app.py",
        "README.md",
        "tests/conftest.py",
        ".env",
        "examples/agent/.env",
        ".venv/bin/python",
        ".git/HEAD",
        ".tools/bin/livekit-server",
        "examples/agent/__pycache__/agent.cpython-311.pyc",
        "compose.yaml",
    ],
)
def test_its_ignore_file_keeps_out(path: str) -> None:
    assert dockerignore_excludes(path, dockerignore_patterns(IGNORE_FILE))


def test_its_ignore_file_lets_in_what_the_build_copies() -> None:
    sources = [
        source
        for stage in STAGES
        for copy in stage.all("COPY")
        if not copy.arguments.startswith("--from=")
        for source in copy.arguments.split()[:-1]
    ]

    assert sources == ["pyproject.toml", "uv.lock", "examples/agent/agent.py"]
    for source in sources:
        assert not dockerignore_excludes(source, dockerignore_patterns(IGNORE_FILE)), source


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_the_healthcheck_passes_on_200_only(status: int, exit_code: int) -> None:
    with _answering(status) as port:
        result = _healthcheck(port)

    assert result.returncode == exit_code, result.stderr


def test_the_healthcheck_fails_when_nothing_listens() -> None:
    assert _healthcheck(free_port()).returncode != 0


@pytest.fixture(scope="module")
def agent_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage's `uv sync`, replayed outside Docker on exactly the files the agent's
    ignore file lets through (offline: from uv's cache, which `make install` filled)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None or shutil.which("git") is None:
        pytest.skip("needs uv and git on PATH")
    context = _build_context(tmp_path_factory.mktemp("agent-context"))
    venv = tmp_path_factory.mktemp("agent") / "venv"
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable}
    (sync,) = [i.arguments for i in BUILD.all("RUN") if "uv sync" in i.arguments]
    command = [uv, *sync[sync.index("uv sync") + len("uv ") :].split(), "--offline"]
    result = subprocess.run(  # noqa: S603
        command, cwd=context, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 and "offline" in result.stderr.lower():
        pytest.skip(f"uv's cache lacks a locked package: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    return venv


@pytest.mark.slow
def test_the_install_step_gives_the_locked_agent_sdks_and_nothing_of_the_gateway(
    agent_venv: Path,
) -> None:
    python = agent_venv / "bin" / "python"
    versions = subprocess.run(  # noqa: S603
        [str(python), "-c", _PRINT_VERSIONS, "livekit-agents", "livekit", *GATEWAY_ONLY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()

    locked = _locked_versions()
    assert versions[:2] == [locked["livekit-agents"], locked["livekit"]]
    assert versions[2:] == ["absent"] * len(GATEWAY_ONLY)


@pytest.mark.slow
def test_the_installed_worker_registers_is_healthy_and_stops_on_sigterm(
    agent_venv: Path, tmp_path: Path
) -> None:
    """As the container runs it: /app/agent.py, the entrypoint, compose's environment (LiveKit's
    address and the health port aside: this machine's), its healthcheck, then `docker stop`."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "examples" / "agent" / "agent.py", app / "agent.py")
    log_path = tmp_path / "agent.log"
    with livekit_server(tmp_path) as server:
        env = _compose_environment(server.ws_url) | {
            "PATH": f"{agent_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603
                ENTRYPOINT, cwd=app, env=env, stdout=log, stderr=log, start_new_session=True
            )
        try:
            registered = _wait_for_log(log_path, "registered worker", process, timeout_s=60)
            healthy = _healthcheck(int(env["AGENT_HEALTH_PORT"]), env)
            process.send_signal(signal.SIGTERM)  # the main process only, as `docker stop` does
            started = time.monotonic()
            exit_code = process.wait(timeout=_stop_grace_s())
            stop_s = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    assert registered["agent_name"] == "example-agent"
    assert healthy.returncode == 0, healthy.stderr
    assert exit_code == 0, log_path.read_text(errors="replace")[-3000:]
    assert stop_s < _stop_grace_s()


_PRINT_VERSIONS = """
import importlib.metadata, importlib.util, sys
for name in sys.argv[1:]:
    try:
        print(importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        found = importlib.util.find_spec(name.replace("-", "_")) is not None
        print("importable" if found else "absent")
"""


def _arg_default(dockerfile: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", (ROOT / dockerfile).read_text(), re.M)
    assert match is not None, f"{dockerfile} has no ARG {name}="
    return match.group(1)


def _healthcheck(port: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command against `port`, its `python` found on `env`'s PATH."""
    command = RUNTIME.last("HEALTHCHECK").exec_form()
    assert command is not None
    environment = (env or dict(os.environ)) | {"AGENT_HEALTH_PORT": str(port)}
    return subprocess.run(  # noqa: S603
        command,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def _answering(status: int) -> Iterator[int]:
    """An HTTP server on a free loopback port answering every GET with `status`."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _build_context(context: Path) -> Path:
    docker_build_context(context, IGNORE_FILE)
    assert sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()) == [
        "examples/agent/agent.py",
        "pyproject.toml",
        "uv.lock",
    ]
    return context


def _locked_versions() -> dict[str, str]:
    """Name to version in uv.lock, for the packages locked once (the project has no version)."""
    packages = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    return {p["name"]: p["version"] for p in packages if "version" in p}


def _compose_environment(ws_url: str) -> dict[str, str]:
    values = {"LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": API_SECRET}
    resolved = {
        name: compose_interpolate(str(value), values)
        for name, value in COMPOSE_AGENT["environment"].items()
    }
    assert resolved.pop("LIVEKIT_URL") == "ws://livekit:7880"
    return resolved | {"LIVEKIT_URL": ws_url, "AGENT_HEALTH_PORT": str(free_port())}


def _stop_grace_s() -> float:
    return float(COMPOSE_AGENT["stop_grace_period"].removesuffix("s"))


def _wait_for_log(
    log_path: Path, message: str, process: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any]:
    """The first JSON log line whose message is `message`, waited for."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if (record := _json_record(line)) and record.get("message") == message:
                return record
        assert process.poll() is None, f"the worker exited:\n{text[-3000:]}"
        assert time.monotonic() < deadline, f"no {message!r} logged:\n{text[-3000:]}"
        time.sleep(0.05)


def _json_record(line: str) -> dict[str, Any] | None:
    """A JSON log line, else None (a plain line, or one still being written)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
