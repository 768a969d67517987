"""The ml-model blueprint's Kustomize deployment: one overlay per region, valid and hardened."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.manifests import (
    Manifest,
    Workload,
    is_builtin,
    render_overlays,
    validate_builtin,
    validate_custom,
    workloads,
)

pytestmark = pytest.mark.tools

Variant = tuple[str, dict[str, Any], Path]
Overlays = dict[str, list[Manifest]]

#: Labels every object carries, whatever its region.
PROJECT_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "backstage.io/kubernetes-id",
    "trellis.dev/registered-model",
    "trellis.dev/blueprint",
    "trellis.dev/data-classification",
)

STORAGE_SCHEMES = {"aws": "s3://", "gcp": "gs://", "azure": "https://"}


@pytest.fixture(scope="module")
def overlays(variant: Variant) -> Overlays:
    """Every overlay of the rendered repository, built with ``kubectl kustomize``."""
    return render_overlays(variant[2])


def answer(variant: Variant, key: str) -> Any:
    """An answer the variant gives, else the default the blueprint would use."""
    defaults = {
        "serving_runtime": "kserve-mlserver",
        "system": "ml-platform",
        "mlflow_tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
        "container_registry": "ghcr.io/acme",
    }
    return variant[1].get(key, defaults.get(key))


def slug(variant: Variant) -> str:
    return re.sub(r"[^a-z0-9]+", "-", variant[1]["project_name"].lower()).strip("-")


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def the_isvc(objects: list[Manifest]) -> Manifest:
    services = of_kind(objects, "InferenceService")
    assert len(services) == 1, f"expected one InferenceService, got {len(services)}"
    return services[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def all_workloads(overlays: Overlays) -> list[tuple[str, Workload]]:
    return [(name, w) for name, objects in overlays.items() for w in workloads(objects)]


def test_one_overlay_per_region(variant: Variant, overlays: Overlays) -> None:
    answers = variant[1]
    assert sorted(overlays) == sorted([answers["hub_region"], *answers["edge_regions"]])
    for name, objects in overlays.items():
        assert objects, f"overlay {name} renders nothing"
        the_isvc(objects)


def test_every_object_validates(overlays: Overlays) -> None:
    for name, objects in overlays.items():
        assert any(is_builtin(o) for o in objects) and not all(is_builtin(o) for o in objects)
        errors = validate_builtin(objects) + validate_custom(objects)
        assert not errors, f"overlay {name}:\n" + "\n".join(errors)


def test_gpu_requests_tolerations_and_node_selector(variant: Variant, overlays: Overlays) -> None:
    answers = variant[1]
    pods = all_workloads(overlays)
    assert pods
    for region, pod in pods:
        where = f"{region} {pod.owner}"
        gpu_limits = [
            c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") for c in pod.containers
        ]
        tolerations = pod.pod.get("tolerations", [])
        selector = pod.pod.get("nodeSelector", {})
        if answers["use_gpu"]:
            wanted = [str(answers["gpu_count"])]
            assert [str(g) for g in gpu_limits if g is not None] == wanted, where
            assert {
                "key": "nvidia.com/gpu",
                "operator": "Exists",
                "effect": "NoSchedule",
            } in tolerations, where
            product = answers.get("gpu_product", "NVIDIA-A10G")
            assert selector.get("nvidia.com/gpu.product") == product, where
        else:
            assert gpu_limits == [None] * len(pod.containers), where
            assert not any("nvidia" in str(t) for t in tolerations), where
            assert "nvidia.com/gpu.product" not in selector, where


def test_no_gpu_anywhere_without_gpus(variant: Variant, overlays: Overlays) -> None:
    text = str(overlays)
    assert ("nvidia.com/gpu" in text) == bool(variant[1]["use_gpu"])


def test_replicas_never_scale_to_zero(variant: Variant, overlays: Overlays) -> None:
    hub = variant[1]["hub_region"]
    for region, objects in overlays.items():
        predictor = the_isvc(objects)["spec"]["predictor"]
        assert predictor["minReplicas"] >= (1 if region == hub else 2), region
        assert predictor["maxReplicas"] >= predictor["minReplicas"], region


def test_containers_run_as_non_root_with_limits(overlays: Overlays) -> None:
    for region, pod in all_workloads(overlays):
        pod_sc = pod.pod.get("securityContext", {})
        assert pod.pod.get("serviceAccountName"), pod.owner
        assert pod.pod.get("automountServiceAccountToken") is False, pod.owner
        for container in pod.containers:
            where = f"{region} {pod.owner}"
            sc = container.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where} {bound}"


def test_service_accounts_exist_without_tokens(overlays: Overlays) -> None:
    for region, objects in overlays.items():
        accounts = {a["metadata"]["name"]: a for a in of_kind(objects, "ServiceAccount")}
        for pod in workloads(objects):
            account = accounts.get(pod.pod["serviceAccountName"])
            assert account is not None, f"{region} {pod.owner}: no such ServiceAccount"
            assert account.get("automountServiceAccountToken") is False


def test_model_server_has_probes(overlays: Overlays) -> None:
    for region, objects in overlays.items():
        model = the_isvc(objects)["spec"]["predictor"]["model"]
        for probe, path in (
            ("readinessProbe", "/v2/health/ready"),
            ("livenessProbe", "/v2/health/live"),
        ):
            assert model.get(probe, {}).get("httpGet", {}).get("path") == path, (region, probe)


def test_training_job_only_at_the_hub(variant: Variant, overlays: Overlays) -> None:
    hub, name = variant[1]["hub_region"], slug(variant)
    for region, objects in overlays.items():
        jobs = of_kind(objects, "Job")
        if region != hub:
            assert not jobs, f"edge {region} must not train"
            continue
        assert len(jobs) == 1
        job = jobs[0]["spec"]
        assert job["backoffLimit"] >= 0
        assert job["ttlSecondsAfterFinished"] > 0
        assert job["activeDeadlineSeconds"] > 0
        (container,) = job["template"]["spec"]["containers"]
        registry = answer(variant, "container_registry")
        assert container["image"].startswith(f"{registry}/{name}-train:")
        assert container["command"] == ["train"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["MLFLOW_TRACKING_URI"] == answer(variant, "mlflow_tracking_uri")


def test_regions_and_residency_labels(variant: Variant, overlays: Overlays) -> None:
    answers, name = variant[1], slug(variant)
    for region, objects in overlays.items():
        role = "hub" if region == answers["hub_region"] else "edge"
        expected = {
            "topology.kubernetes.io/region": region,
            "trellis.dev/region": region,
            "trellis.dev/data-residency": region,
            "trellis.dev/role": role,
            "trellis.dev/data-classification": answers["data_classification"],
            "trellis.dev/registered-model": name,
            "trellis.dev/blueprint": "ml-model",
            "backstage.io/kubernetes-id": name,
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": answer(variant, "system"),
        }
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            assert set(PROJECT_LABELS) <= set(labels), obj["metadata"]["name"]
            wrong = {k: labels.get(k) for k, v in expected.items() if labels.get(k) != v}
            assert not wrong, f"{region} {obj['kind']}/{obj['metadata']['name']}: {wrong}"
            assert obj["metadata"]["namespace"] == name
        for pod in workloads(objects):
            assert pod.labels.get("trellis.dev/data-residency") == region, pod.owner
            assert pod.labels.get("trellis.dev/region") == region, pod.owner


def expected_storage_uri(cloud: str, repository: str, project: str, region: str) -> str:
    """The regional bucket's model path, by the naming rule of infra/storage.tf."""
    suffix = hashlib.sha1(repository.encode()).hexdigest()[:8]
    bucket = f"{project[:28].rstrip('-')}-{region}-{suffix}"
    if cloud == "azure":
        account_hash = hashlib.sha1(f"{suffix}/{region}".encode()).hexdigest()[:8]
        account = f"st{project.replace('-', '')[:12]}{account_hash}"
        return f"https://{account}.blob.core.windows.net/models/{project}/champion"
    scheme = {"aws": "s3", "gcp": "gs"}[cloud]
    return f"{scheme}://{bucket}/models/{project}/champion"


def test_model_storage_is_the_regions_own_bucket(variant: Variant, overlays: Overlays) -> None:
    """Each overlay reads the bucket Terraform creates in that region, and no other."""
    cloud = variant[1]["cloud"]
    recorded = yaml.safe_load((variant[2] / ".copier-answers.yml").read_text())
    repository = recorded["repository"]
    for region, objects in overlays.items():
        uri = the_isvc(objects)["spec"]["predictor"]["model"]["storageUri"]
        assert uri.startswith(STORAGE_SCHEMES[cloud]), uri
        assert uri == expected_storage_uri(cloud, repository, slug(variant), region)
    storage = (variant[2] / "infra" / "storage.tf").read_text()
    if cloud == "azure":
        assert 'name                              = "st${local.short_names[each.key]}"' in storage
    else:
        assert '"${local.bucket_prefix}-${each.key}-${var.name_suffix}"' in storage
    variables = (variant[2] / "infra" / "variables.tf").read_text()
    suffix = hashlib.sha1(repository.encode()).hexdigest()[:8]
    assert f'default     = "{suffix}"' in variables


def test_serving_runtime_and_model_format(variant: Variant, overlays: Overlays) -> None:
    triton = answer(variant, "serving_runtime") == "triton"
    for objects in overlays.values():
        model = the_isvc(objects)["spec"]["predictor"]["model"]
        assert model["protocolVersion"] == "v2"
        if triton:
            assert model["modelFormat"] == {"name": "onnx"}
            assert model["runtime"] == "kserve-tritonserver"
        else:
            assert model["modelFormat"] == {"name": "mlflow"}
            assert model["runtime"] == "kserve-mlserver"


def test_slo_alerts_use_runtime_metrics(variant: Variant, overlays: Overlays) -> None:
    triton = answer(variant, "serving_runtime") == "triton"
    latency_metric = (
        "nv_inference_request_summary_us"
        if triton
        else "rest_server_request_duration_seconds_bucket"
    )
    failure_metric = (
        "nv_inference_request_failure" if triton else "model_infer_request_failure_total"
    )
    for region, objects in overlays.items():
        rules = [
            rule
            for pr in of_kind(objects, "PrometheusRule")
            for group in pr["spec"]["groups"]
            for rule in group["rules"]
            if "alert" in rule
        ]
        exprs = [" ".join(rule["expr"].split()) for rule in rules]
        latency = [e for e in exprs if latency_metric in e and "0.95" in e and ">" in e]
        errors = [e for e in exprs if failure_metric in e and "/" in e and ">" in e]
        assert latency, f"{region}: no p95 latency alert on {latency_metric}"
        assert errors, f"{region}: no error-rate alert on {failure_metric}"
        assert all(f'inferenceservice="{slug(variant)}"' in e for e in latency + errors)


def test_metrics_are_scraped_and_allowed(variant: Variant, overlays: Overlays) -> None:
    port = 8002 if answer(variant, "serving_runtime") == "triton" else 8082
    for region, objects in overlays.items():
        predictor = next(w for w in workloads(objects) if w.owner.startswith("InferenceService"))
        (monitor,) = of_kind(objects, "PodMonitor")
        assert matches(monitor["spec"]["selector"]["matchLabels"], predictor.labels), region
        assert [e.get("portNumber") for e in monitor["spec"]["podMetricsEndpoints"]] == [port]
        allowed = [
            p["port"]
            for policy in of_kind(objects, "NetworkPolicy")
            if matches(policy["spec"]["podSelector"].get("matchLabels", {}), predictor.labels)
            for rule in policy["spec"].get("ingress", [])
            for p in rule.get("ports", [])
        ]
        assert port in allowed and 8080 in allowed, (region, allowed)


def test_every_pod_has_a_network_policy(overlays: Overlays) -> None:
    for region, objects in overlays.items():
        policies = of_kind(objects, "NetworkPolicy")
        for pod in workloads(objects):
            covering = [
                p
                for p in policies
                if matches(p["spec"]["podSelector"].get("matchLabels", {}), pod.labels)
            ]
            assert covering, f"{region} {pod.owner}: no NetworkPolicy selects its pods"
            for policy in covering:
                assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                for rule in policy["spec"].get("ingress", []):
                    assert rule.get("from"), f"{policy['metadata']['name']}: open ingress rule"
