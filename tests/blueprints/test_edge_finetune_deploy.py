"""edge-finetune's Kubernetes objects: valid, hardened, in the region, and walled in.

The fine-tuning Job (or CronJob) runs in the region's namespace on the asked GPUs as a non-root
user, with a token-less ServiceAccount that carries the cloud's workload identity, and reads
its data location from config. A default-deny egress policy lets its pods reach cluster DNS,
the registry and the regional data store only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.manifests import Manifest, render_overlay, validate_builtin, workloads

pytestmark = pytest.mark.tools

Variant = tuple[str, dict[str, Any], Path]
REGISTRY = "http://mlflow.mlflow.svc.cluster.local:5000"
#: Where GKE's metadata server hands out Workload Identity tokens.
GKE_METADATA = {("169.254.169.254/32", 80), ("169.254.169.252/32", 988)}


@pytest.fixture(scope="module")
def objects(finetune_variant: Variant) -> list[Manifest]:
    return render_overlay(finetune_variant[2] / "deploy")


def adapter(variant: Variant) -> str:
    import yaml

    return str(yaml.safe_load((variant[2] / ".copier-answers.yml").read_text())["adapter_name"])


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def test_every_object_validates_strictly(objects: list[Manifest]) -> None:
    assert sorted(o["kind"] for o in objects) in (
        ["ConfigMap", "Job", "NetworkPolicy", "ServiceAccount"],
        ["ConfigMap", "CronJob", "NetworkPolicy", "ServiceAccount"],
    )
    assert validate_builtin(objects) == []


def test_a_job_on_demand_or_a_cronjob_on_the_schedule(
    finetune_variant: Variant, objects: list[Manifest]
) -> None:
    schedule = finetune_variant[1].get("schedule", "on-demand")
    if schedule == "on-demand":
        (job,) = of_kind(objects, "Job")
        spec = job["spec"]
    else:
        (cron,) = of_kind(objects, "CronJob")
        assert cron["spec"]["schedule"] == schedule
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        spec = cron["spec"]["jobTemplate"]["spec"]
    assert spec["backoffLimit"] == 0, "a failed gate must not be retried"
    assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    (pod,) = workloads(objects)
    (container,) = pod.containers
    assert container["command"] == ["finetune"]
    assert container["image"].endswith(f"/{adapter(finetune_variant)}-finetune:0.1.0")


def test_in_the_regions_namespace_on_gpus_as_a_non_root_user(
    finetune_variant: Variant, objects: list[Manifest]
) -> None:
    answers, name = finetune_variant[1], adapter(finetune_variant)
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert obj["metadata"]["namespace"] == name
        assert labels["trellis.dev/region"] == answers["data_region"]
        assert labels["trellis.dev/data-residency"] == answers["data_region"]
        assert labels["trellis.dev/registered-model"] == name
        assert labels["trellis.dev/blueprint"] == "edge-finetune"
        assert labels["trellis.dev/data-classification"] == answers["classification"]
    (pod,) = workloads(objects)
    assert pod.pod["nodeSelector"] == {
        "topology.kubernetes.io/region": answers["data_region"],
        "nvidia.com/gpu.product": answers.get("job_gpu_type", "NVIDIA-L4"),
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod.pod[
        "tolerations"
    ]
    assert pod.pod["securityContext"]["runAsNonRoot"] is True
    assert pod.pod["automountServiceAccountToken"] is False
    (container,) = pod.containers
    job_gpus = str(answers.get("job_gpus", 1))
    for bound in ("requests", "limits"):
        assert container["resources"][bound]["nvidia.com/gpu"] == job_gpus
        assert {"cpu", "memory"} <= set(container["resources"][bound])
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/dev/shm"} <= mounts  # emptyDirs: the only writable places


def test_the_service_account_carries_the_workload_identity(
    finetune_variant: Variant, objects: list[Manifest]
) -> None:
    cloud, name = finetune_variant[1]["target_cloud"], adapter(finetune_variant)
    (account,) = of_kind(objects, "ServiceAccount")
    (pod,) = workloads(objects)
    assert pod.pod["serviceAccountName"] == account["metadata"]["name"] == f"{name}-finetune"
    assert account["automountServiceAccountToken"] is False
    annotations = account["metadata"]["annotations"]
    if cloud == "aws":
        assert annotations["eks.amazonaws.com/role-arn"].endswith(f":role/{name}-finetune")
    else:
        email = annotations["iam.gke.io/gcp-service-account"]
        assert email.startswith(f"{name[:20].rstrip('-')}-finetune@")


def test_the_data_location_and_registry_come_from_config(
    finetune_variant: Variant, objects: list[Manifest]
) -> None:
    answers = finetune_variant[1]
    (config,) = of_kind(objects, "ConfigMap")
    (pod,) = workloads(objects)
    (container,) = pod.containers
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    location = config["data"]["DATA_LOCATION"]
    scheme = {"aws": "s3://", "gcp": "gs://"}[answers["target_cloud"]]
    assert location.startswith(scheme) and answers["data_region"] in location.split("/")[2]
    assert config["data"]["MLFLOW_TRACKING_URI"] == REGISTRY


def test_egress_is_denied_but_for_dns_the_registry_and_the_regional_data_store(
    finetune_variant: Variant, objects: list[Manifest]
) -> None:
    answers = finetune_variant[1]
    (policy,) = of_kind(objects, "NetworkPolicy")
    (pod,) = workloads(objects)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(pod.labels.get(k) == v for k, v in selector.items())
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not policy["spec"].get("ingress")
    allowed = set()
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), f"an egress rule open to every address: {rule}"
        ports = tuple(sorted((p["protocol"], p["port"]) for p in rule["ports"]))
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert not peer["ipBlock"].get("except")
                allowed.add(("cidr", peer["ipBlock"]["cidr"], ports))
            else:
                namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                pods = tuple(sorted(peer["podSelector"]["matchLabels"].items()))
                allowed.add(("pods", namespace, pods, ports))
    cidr = answers.get(
        "data_store_cidr",
        {"aws": "10.0.128.0/24", "gcp": "199.36.153.8/30"}[answers["target_cloud"]],
    )
    expected = {
        ("pods", "kube-system", (("k8s-app", "kube-dns"),), (("TCP", 53), ("UDP", 53))),
        ("pods", "mlflow", (("app.kubernetes.io/name", "mlflow"),), (("TCP", 5000),)),
        ("cidr", cidr, (("TCP", 443),)),
    }
    if answers["target_cloud"] == "gcp":
        expected |= {("cidr", c, (("TCP", port),)) for c, port in GKE_METADATA}
    assert allowed == expected
