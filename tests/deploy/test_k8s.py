"""deploy/k8s/: valid against the Kubernetes schemas (bundled with kubernetes-validate, so this
runs offline), and wired the way the gateway needs: probes, non-root, resources, drain timing."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest

from tests.support.repo_files import dockerfile_stages, read_yaml
from voice_gateway import __version__
from voice_gateway.settings import Settings

MANIFESTS = ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"]
# The oldest Kubernetes still commonly run, and the newest the validator knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
DEPLOYMENT = read_yaml("deploy/k8s/deployment.yaml")
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
ENV = {item["name"]: item.get("value") for item in CONTAINER["env"]}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_is_valid_against_the_kubernetes_schema(manifest: str, version: str) -> None:
    kubernetes_validate.validate(read_yaml(f"deploy/k8s/{manifest}"), version, strict=True)


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    assert read_yaml("deploy/k8s/kustomization.yaml")["resources"] == MANIFESTS


def test_readiness_is_readyz_and_liveness_is_healthz_on_the_gateways_port() -> None:
    (port,) = CONTAINER["ports"]

    assert port["containerPort"] == 8000
    assert CONTAINER["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert CONTAINER["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}


def test_the_image_is_tagged_with_the_gateways_version() -> None:
    # Bumping __version__ without the manifest would deploy the previous release's image.
    assert CONTAINER["image"].rpartition(":")[2] == __version__


def test_the_pod_runs_as_the_images_non_root_user() -> None:
    image_user = int(dockerfile_stages()[-1].last("USER").arguments.split(":")[0])

    assert POD["securityContext"]["runAsNonRoot"] is True
    assert POD["securityContext"]["runAsUser"] == image_user
    assert CONTAINER["securityContext"]["allowPrivilegeEscalation"] is False
    assert CONTAINER["securityContext"]["readOnlyRootFilesystem"] is True
    assert CONTAINER["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_container_requests_and_limits_resources() -> None:
    resources = CONTAINER["resources"]

    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) >= {"memory"}


def test_termination_grace_covers_prestop_and_the_drain() -> None:
    pre_stop = CONTAINER["lifecycle"]["preStop"]["exec"]["command"]
    (pre_stop_s,) = [int(arg) for arg in pre_stop if re.fullmatch(r"\d+", arg)]
    drain_s = float(ENV["VOICE_GATEWAY_SHUTDOWN_GRACE_S"] or 0)
    livekit_timeout_s = float(ENV["VOICE_GATEWAY_LIVEKIT_TIMEOUT_S"] or 0)

    assert pre_stop[0] == "sleep"
    # preStop, then SIGTERM and the drain, then the lifespan's last LiveKit calls.
    assert POD["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + livekit_timeout_s


def test_the_drain_settings_are_ones_the_gateway_accepts() -> None:
    drain = {
        "shutdown_grace_s": ENV["VOICE_GATEWAY_SHUTDOWN_GRACE_S"],
        "shutdown_delay_s": ENV["VOICE_GATEWAY_SHUTDOWN_DELAY_S"],
    }
    required = {"livekit_url": "http://livekit:7880", "livekit_api_key": "k"}

    settings = Settings(**required, livekit_api_secret="s", **drain)  # type: ignore[arg-type]

    assert settings.shutdown_delay_s < settings.shutdown_grace_s


def test_secrets_come_from_a_secret_never_from_the_manifest() -> None:
    by_name = {item["name"]: item for item in CONTAINER["env"]}

    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "VOICE_GATEWAY_API_KEYS"):
        assert "value" not in by_name[name]
        assert by_name[name]["valueFrom"]["secretKeyRef"]["name"] == "voice-gateway"


def test_the_service_selects_the_deployments_pods_on_the_named_port() -> None:
    service = read_yaml("deploy/k8s/service.yaml")["spec"]
    pod_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]

    assert service["selector"].items() <= pod_labels.items()
    assert service["ports"][0]["targetPort"] == CONTAINER["ports"][0]["name"]


def test_the_autoscaler_scales_the_deployment() -> None:
    hpa: dict[str, Any] = read_yaml("deploy/k8s/hpa.yaml")["spec"]

    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": DEPLOYMENT["metadata"]["name"],
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
