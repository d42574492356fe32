"""compose.yaml: the gateway beside a real LiveKit and the example agent, wired right. Parsed here;
also validated by `docker compose config` where a Compose v2 client is installed (no engine is
needed for it)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.repo_files import ROOT, compose_interpolate, dockerfile_stages, read_yaml
from voice_gateway.settings import Settings, env_name

COMPOSE = read_yaml("compose.yaml")
SERVICES: dict[str, Any] = COMPOSE["services"]
REQUIRED = {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "VOICE_GATEWAY_API_KEYS"}
REQUIRED_VALUES = {
    "LIVEKIT_API_KEY": "compose-test-key",
    "LIVEKIT_API_SECRET": "compose-test-secret-0123456789abcdef",
    "VOICE_GATEWAY_API_KEYS": "compose-test-caller",
}


def test_livekit_runs_in_dev_mode_bound_to_every_interface() -> None:
    command = SERVICES["livekit"]["command"]

    assert "--dev" in command
    assert command[command.index("--bind") + 1] == "0.0.0.0"  # noqa: S104
    assert SERVICES["livekit"]["image"].startswith("${LIVEKIT_IMAGE:-livekit/livekit-server:v")


def test_livekit_publishes_its_api_tcp_and_udp_ports() -> None:
    assert set(SERVICES["livekit"]["ports"]) == {"7880:7880", "7881:7881", "7882:7882/udp"}


def test_livekit_is_checked_with_a_tool_its_alpine_image_has() -> None:
    test = SERVICES["livekit"]["healthcheck"]["test"]

    assert test[:2] == ["CMD", "wget"]  # busybox; the image has no curl
    assert test[-1] == "http://127.0.0.1:7880/"


def test_livekit_uses_the_gateways_key_pair() -> None:
    keys = SERVICES["livekit"]["environment"]["LIVEKIT_KEYS"]

    assert re.fullmatch(r"\$\{LIVEKIT_API_KEY:\?[^}]+\}: \$\{LIVEKIT_API_SECRET:\?[^}]+\}", keys)


def test_livekit_sends_its_webhooks_to_the_gateway_signed_with_its_key() -> None:
    body = SERVICES["livekit"]["environment"]["LIVEKIT_CONFIG"]

    config = yaml.safe_load(body.replace("${LIVEKIT_API_KEY}", "a-key"))

    assert config["webhook"]["api_key"] == "a-key"
    assert config["webhook"]["urls"] == ["http://gateway:8000/api/voice/webhook"]


def test_the_gateway_waits_for_a_healthy_livekit() -> None:
    depends_on = SERVICES["gateway"]["depends_on"]

    assert depends_on["livekit"]["condition"] == "service_healthy"


def test_the_gateway_reaches_livekit_inside_and_hands_clients_the_host_url() -> None:
    environment = SERVICES["gateway"]["environment"]

    assert environment["LIVEKIT_URL"] == "http://livekit:7880"
    public = environment["VOICE_GATEWAY_PUBLIC_LIVEKIT_URL"]
    assert public == "${VOICE_GATEWAY_PUBLIC_LIVEKIT_URL:-ws://localhost:7880}"


def test_the_gateway_is_checked_in_python_on_readiness() -> None:
    test = SERVICES["gateway"]["healthcheck"]["test"]

    assert test == ["CMD", "python", "-m", "voice_gateway.probe", "http://127.0.0.1:8000/readyz"]


def test_required_settings_stop_compose_with_a_message() -> None:
    text = (ROOT / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?[^}]+\}", text))

    assert required == REQUIRED


def test_the_gateway_is_given_longer_to_stop_than_its_drain() -> None:
    grace_s = Settings.model_fields["shutdown_grace_s"].default
    stop_s = int(SERVICES["gateway"]["stop_grace_period"].removesuffix("s"))

    assert stop_s > grace_s


def test_a_profile_adds_redis_for_livekit_and_the_gateway() -> None:
    redis = SERVICES["redis"]

    assert redis["profiles"] == ["redis"]
    assert redis["healthcheck"]["test"][:2] == ["CMD", "redis-cli"]
    assert SERVICES["livekit"]["environment"]["REDIS_HOST"] == "${LIVEKIT_REDIS_HOST:-}"
    gateway_redis = SERVICES["gateway"]["environment"]["VOICE_GATEWAY_REDIS_URL"]
    assert gateway_redis == "${VOICE_GATEWAY_REDIS_URL:-}"
    for service in ("livekit", "gateway"):
        assert SERVICES[service]["depends_on"]["redis"]["required"] is False


def test_the_agent_is_built_from_the_root_with_its_own_dockerfile_and_ignore_file() -> None:
    build = SERVICES["agent"]["build"]

    assert build["context"] == "."  # uv.lock is in the context
    assert (ROOT / build["dockerfile"]).is_file()
    # BuildKit reads <Dockerfile>.dockerignore instead of the context's .dockerignore.
    assert (ROOT / f"{build['dockerfile']}.dockerignore").is_file()
    assert SERVICES["agent"]["image"] != SERVICES["gateway"]["image"]


def test_the_agent_registers_with_livekit_inside_with_the_gateways_key_pair() -> None:
    agent, gateway = SERVICES["agent"]["environment"], SERVICES["gateway"]["environment"]

    assert agent["LIVEKIT_URL"] == "ws://livekit:7880"
    assert agent["LIVEKIT_API_KEY"] == gateway["LIVEKIT_API_KEY"]
    assert agent["LIVEKIT_API_SECRET"] == gateway["LIVEKIT_API_SECRET"]


def test_the_agent_waits_for_a_healthy_livekit() -> None:
    assert SERVICES["agent"]["depends_on"]["livekit"]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("env", "name", "allowed"),
    [
        ({}, "example-agent", ["example-agent"]),
        ({"VOICE_GATEWAY_DEFAULT_AGENT": ""}, "example-agent", ["example-agent"]),  # .env.example
        ({"VOICE_GATEWAY_DEFAULT_AGENT": "my-agent"}, "my-agent", ["my-agent"]),
        (
            {"VOICE_GATEWAY_ALLOWED_AGENTS": "example-agent,pm-agent"},
            "example-agent",
            ["example-agent", "pm-agent"],
        ),
    ],
)
def test_the_gateway_dispatches_the_agent_by_the_name_it_registers_under(
    env: dict[str, str], name: str, allowed: list[str]
) -> None:
    agent = _resolved("agent", REQUIRED_VALUES | env)
    gateway = _resolved("gateway", REQUIRED_VALUES | env)

    settings = Settings.model_validate({_field(var): value for var, value in gateway.items()})

    assert agent["LIVEKIT_AGENT_NAME"] == name
    assert settings.default_agent == name
    assert settings.allowed_agents == allowed


def test_the_agent_is_checked_on_its_health_port_as_its_image_does() -> None:
    agent = SERVICES["agent"]
    environment, test = agent["environment"], agent["healthcheck"]["test"]
    runtime = dockerfile_stages(agent["build"]["dockerfile"])[-1]
    image_env = re.findall(r"(\w+)=(\S+)", " ".join(i.arguments for i in runtime.all("ENV")))

    assert test[0] == "CMD"
    assert test[1:] == runtime.last("HEALTHCHECK").exec_form()
    assert "os.environ['AGENT_HEALTH_PORT']" in test[-1]
    assert ("AGENT_HEALTH_PORT", environment["AGENT_HEALTH_PORT"]) in image_env
    # Only the healthcheck, inside the container, asks it: nothing publishes or binds it wider.
    assert environment["AGENT_HEALTH_HOST"] == "127.0.0.1"
    assert "ports" not in agent


def test_the_agent_is_given_longer_to_stop_than_its_drain() -> None:
    timeouts = _agent_server_arguments("drain_timeout", "shutdown_process_timeout")
    stop_s = int(SERVICES["agent"]["stop_grace_period"].removesuffix("s"))

    assert stop_s > sum(timeouts)


def test_the_agent_runs_read_only_without_capabilities() -> None:
    agent = SERVICES["agent"]

    assert agent["read_only"] is True
    assert agent["tmpfs"] == ["/tmp"]  # multiprocessing's forkserver socket  # noqa: S108
    assert agent["cap_drop"] == ["ALL"]
    assert agent["security_opt"] == ["no-new-privileges:true"]


def test_every_service_has_a_healthcheck() -> None:
    assert all("healthcheck" in service for service in SERVICES.values())


def test_env_example_lists_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))

    assert {env_name(field) for field in Settings.model_fields} <= listed


def test_env_example_lists_what_compose_reads() -> None:
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    read = set(re.findall(r"\$\{(\w+)[:?-]", (ROOT / "compose.yaml").read_text()))

    assert read <= listed


@pytest.fixture
def compose(tmp_path: Path) -> list[str]:
    """A Compose v2 command, run on a copy of compose.yaml in an empty directory (so no
    developer's .env takes part)."""
    command = _compose_v2()
    if command is None:
        pytest.skip("no Docker Compose v2 client installed (`docker compose` or docker-compose)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    return [*command, "--project-directory", str(tmp_path), "-f", str(tmp_path / "compose.yaml")]


def test_docker_compose_config_accepts_the_file(compose: list[str]) -> None:
    rendered = _run([*compose, "config", "--format", "json"], REQUIRED_VALUES)

    services = json.loads(rendered.stdout)["services"]
    assert services["gateway"]["environment"]["LIVEKIT_URL"] == "http://livekit:7880"
    assert services["livekit"]["environment"]["LIVEKIT_KEYS"] == (
        "compose-test-key: compose-test-secret-0123456789abcdef"
    )
    assert {p["target"] for p in services["livekit"]["ports"]} == {7880, 7881, 7882}
    assert services["agent"]["environment"]["LIVEKIT_URL"] == "ws://livekit:7880"
    assert services["agent"]["environment"]["LIVEKIT_AGENT_NAME"] == "example-agent"
    assert services["gateway"]["environment"]["VOICE_GATEWAY_DEFAULT_AGENT"] == "example-agent"
    assert services["gateway"]["environment"]["VOICE_GATEWAY_ALLOWED_AGENTS"] == "example-agent"
    assert services["agent"]["build"]["dockerfile"] == "examples/agent/Dockerfile"


def test_docker_compose_config_names_a_missing_required_setting(compose: list[str]) -> None:
    values = {k: v for k, v in REQUIRED_VALUES.items() if k != "LIVEKIT_API_SECRET"}

    rendered = _run([*compose, "config", "--quiet"], values)

    assert "LIVEKIT_API_SECRET" in rendered.stderr
    assert "see .env.example" in rendered.stderr


def test_docker_compose_profile_redis_adds_the_redis_service(compose: list[str]) -> None:
    plain = _run([*compose, "config", "--services"], REQUIRED_VALUES).stdout.split()
    with_redis = _run([*compose, "--profile", "redis", "config", "--services"], REQUIRED_VALUES)

    assert "redis" not in plain
    assert "redis" in with_redis.stdout.split()


def _resolved(service: str, env: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose hands it over, interpolated from `env` (the .env)."""
    environment = SERVICES[service]["environment"]
    return {name: compose_interpolate(str(value), env) for name, value in environment.items()}


def _field(variable: str) -> str:
    names = {env_name(field): field for field in Settings.model_fields}
    return names[variable]


def _agent_server_arguments(*names: str) -> list[float]:
    """Keyword arguments of the AgentServer(...) call in examples/agent/agent.py."""
    tree = ast.parse((ROOT / "examples" / "agent" / "agent.py").read_text())
    (call,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AgentServer"
    ]
    given = {k.arg: k.value for k in call.keywords}
    return [float(ast.literal_eval(given[name])) for name in names]


def _compose_v2() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        version = subprocess.run(  # noqa: S603
            [*command, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if version.returncode == 0 and re.search(r"v?2\.\d+", version.stdout):
            return command
    return None


def _run(command: list[str], values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())} | values
    return subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
