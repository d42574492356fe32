"""The container image: the Dockerfile and .dockerignore as Docker reads them, the Python
HEALTHCHECK, and the image's install steps replayed from the build context alone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import free_port, serving
from tests.support.repo_files import (
    ROOT,
    docker_build_context,
    dockerfile_stages,
    dockerignore_excludes,
    dockerignore_patterns,
)
from voice_gateway.probe import probe
from voice_gateway.standin import StandIn

STAGES = dockerfile_stages()
RUNTIME = STAGES[-1]
BUILD_TOOLS = re.compile(r"\b(uv|pip|apt-get|apk|gcc|cc|make|curl|wget)\b")


def test_the_image_is_built_in_stages() -> None:
    assert len(STAGES) >= 2
    assert RUNTIME.name == "runtime"
    assert "slim" in _image_default()
    copied_from = [i.arguments for i in RUNTIME.all("COPY")]
    assert copied_from == ["--from=build /app/.venv /app/.venv"]


def test_dependencies_come_from_the_committed_lock_without_dev_tools() -> None:
    build = STAGES[0]
    syncs = [i.arguments for i in build.all("RUN") if "uv sync" in i.arguments]
    assert syncs
    # --locked: the lock exactly, and a lock stale against pyproject.toml fails the build.
    # --no-default-groups: neither the dev tools nor the e2e group's agent and rtc SDKs.
    assert all("--locked" in sync and "--no-default-groups" in sync for sync in syncs)
    assert any("uv.lock" in i.arguments for i in build.all("COPY"))


def test_the_image_pins_the_same_uv_as_the_makefile() -> None:
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    (arg,) = [i.arguments for i in STAGES[0].all("ARG") if i.arguments.startswith("UV_VERSION=")]
    assert makefile_uv is not None
    assert arg == f"UV_VERSION={makefile_uv.group(1)}"


def test_the_runtime_stage_installs_no_build_tools() -> None:
    for instruction in RUNTIME.all("RUN"):
        assert not BUILD_TOOLS.search(instruction.arguments), instruction.arguments


def test_the_runtime_runs_as_a_numeric_non_root_user() -> None:
    user, _, group = RUNTIME.last("USER").arguments.partition(":")
    assert int(user) > 0
    assert int(group) > 0


def test_the_healthcheck_is_python_in_exec_form() -> None:
    command = RUNTIME.last("HEALTHCHECK").exec_form()
    assert command is not None
    assert command[:3] == ["python", "-m", "voice_gateway.probe"]
    assert command[3].endswith(":8000/healthz")


def test_the_gateway_runs_in_exec_form_with_one_worker() -> None:
    entrypoint = RUNTIME.last("ENTRYPOINT").exec_form()
    command = RUNTIME.last("CMD").exec_form()
    assert entrypoint == ["voice-gateway"]
    assert command == ["serve"]
    assert RUNTIME.last("STOPSIGNAL").arguments == "SIGTERM"
    assert "--workers" not in (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize(
    "path",
    [
        "tests/conftest.py",
        "bench/wrk.py",
        ".env",
        "src/voice_gateway/.env",
        ".venv/bin/python",
        ".git/HEAD",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/voice_gateway/app.meta.json",
        "src/voice_gateway/__pycache__/app.cpython-311.pyc",
        "compose.yaml",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignore_excludes(path, dockerignore_patterns())


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "uv.lock", "README.md", "src/voice_gateway/web/app.py"]
)
def test_dockerignore_lets_in_what_the_build_copies(path: str) -> None:
    assert not dockerignore_excludes(path, dockerignore_patterns())


def test_probe_is_healthy_when_the_url_answers_2xx(standin: StandIn) -> None:
    assert probe(f"{standin.url}/")  # the stand-in answers GET / with 200 OK, as LiveKit does


def test_probe_is_unhealthy_when_nothing_listens() -> None:
    assert not probe(f"http://127.0.0.1:{free_port()}/healthz")


def test_probe_is_unhealthy_on_an_error_status(standin: StandIn) -> None:
    assert not probe(f"{standin.url}/twirp/livekit.RoomService/ListRooms")  # 4xx: no auth


def test_probe_opens_nothing_but_http() -> None:
    assert not probe("file:///etc/passwd")


@pytest.mark.slow
def test_the_image_install_steps_work_from_the_build_context_alone(
    tmp_path: Path, standin: StandIn
) -> None:
    """The build stage's two `uv sync` steps, replayed outside Docker on exactly the files
    .dockerignore lets through; then the installed command serves and passes its HEALTHCHECK."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None or shutil.which("git") is None:
        pytest.skip("needs uv and git on PATH")
    context, venv = _build_context(tmp_path / "context"), tmp_path / "venv"
    for sync in (["--no-install-project"], ["--no-editable"]):
        _uv_sync(uv, context, venv, sync)
    assert not (venv / "bin" / "pytest").exists()
    assert not list(venv.glob("lib/python*/site-packages/livekit/agents")), "e2e group installed"
    installed = [str(venv / "bin" / "voice-gateway")]
    with serving(tmp_path, standin, installed) as gateway:
        healthcheck = [str(venv / "bin" / "python"), "-m", "voice_gateway.probe"]
        result = subprocess.run(  # noqa: S603
            [*healthcheck, f"{gateway.base}/healthz"], timeout=30, check=False
        )
        gateway.process.send_signal(signal.SIGINT)
        exit_code = gateway.exit_code(timeout_s=20)
    assert result.returncode == 0
    assert exit_code == 0


def _build_context(context: Path) -> Path:
    return docker_build_context(context)


def _uv_sync(uv: str, context: Path, venv: Path, extra: list[str]) -> None:
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable}
    command = [uv, "sync", "--locked", "--no-default-groups", "--offline", *extra]
    result = subprocess.run(  # noqa: S603
        command, cwd=context, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 and "offline" in result.stderr.lower():
        pytest.skip(f"uv's cache lacks a locked package: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr


def _image_default() -> str:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert match is not None
    return match.group(1)
