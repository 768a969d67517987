"""The ml-model blueprint's Kustomize deployment: one production overlay per region and a staging
overlay on the hub cluster, valid, hardened, and served by KServe in Serverless mode."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
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
from support.timing import scaled
from support.tools import kubectl
from trellis.scorecards.facts import server_deployment_facts
from trellis.sources.kube_objects import ClusterObjects, to_deployments

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

#: The overlay that serves each new model version before any production region.
STAGING = "staging"

#: The taint each cloud puts on spot GPU nodes (EKS managed spot nodes carry none).
SPOT_TAINTS = {
    "gcp": {"key": "cloud.google.com/gke-spot", "value": "true"},
    "azure": {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot"},
}

#: Pod Security admission labels every namespace carries.
POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}{suffix}": value
    for mode in ("enforce", "audit", "warn")
    for suffix, value in (("", "restricted"), ("-version", "latest"))
}


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


def region_of(variant: Variant, overlay: str) -> str:
    """The region an overlay deploys to: staging runs on the hub cluster."""
    return variant[1]["hub_region"] if overlay == STAGING else overlay


def namespace_of(variant: Variant, overlay: str) -> str:
    return f"{slug(variant)}-staging" if overlay == STAGING else slug(variant)


def test_one_overlay_per_region_and_staging(variant: Variant, overlays: Overlays) -> None:
    answers = variant[1]
    regions = [answers["hub_region"], *answers["edge_regions"]]
    assert sorted(overlays) == sorted([*regions, STAGING])
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
            sharing = answers.get("gpu_sharing", "none")
            serving = pod.owner.startswith("InferenceService")
            resource, count, node_label = "nvidia.com/gpu", str(answers["gpu_count"]), None
            if serving and sharing == "time-slicing":
                count, node_label = "1", "time-slicing"
            elif serving and sharing == "mig":
                profile = answers["mig_profile"]
                resource, count, node_label = f"nvidia.com/mig-{profile}", "1", f"mig-{profile}"
            for container in pod.containers:
                resources = container.get("resources", {})
                gpus = {k: str(v) for k, v in resources.get("limits", {}).items() if "nvidia" in k}
                assert gpus == {resource: count}, where
                assert {
                    k: str(v) for k, v in resources["requests"].items() if "nvidia" in k
                } == gpus
            assert {
                "key": "nvidia.com/gpu",
                "operator": "Exists",
                "effect": "NoSchedule",
            } in tolerations, where
            product = answers.get("gpu_product", "NVIDIA-A10G")
            assert selector.get("nvidia.com/gpu.product") == product, where
            assert selector.get("trellis.dev/gpu-sharing") == node_label, where
            # Shared GPU nodes are tainted for the model server alone.
            sharing_tolerations = [t for t in tolerations if t["key"] == "trellis.dev/gpu-sharing"]
            assert sharing_tolerations == (
                [{"key": "trellis.dev/gpu-sharing", "operator": "Equal", "value": node_label,
                  "effect": "NoSchedule"}] if node_label else []
            ), where  # fmt: skip
            if sharing != "none" and not serving:  # training keeps whole GPUs
                terms = pod.pod["affinity"]["nodeAffinity"][
                    "requiredDuringSchedulingIgnoredDuringExecution"
                ]["nodeSelectorTerms"]
                assert terms == [
                    {
                        "matchExpressions": [
                            {"key": "trellis.dev/gpu-sharing", "operator": "DoesNotExist"}
                        ]
                    }
                ], where
            spot = (
                SPOT_TAINTS.get(answers["cloud"]) if answers.get("gpu_capacity") == "spot" else None
            )
            spot_keys = {taint["key"] for taint in SPOT_TAINTS.values()}
            spot_tolerations = [t for t in tolerations if t["key"] in spot_keys]
            assert spot_tolerations == (
                [{**spot, "operator": "Equal", "effect": "NoSchedule"}] if spot else []
            ), where
        else:
            assert gpu_limits == [None] * len(pod.containers), where
            assert not any("nvidia" in str(t) for t in tolerations), where
            assert "nvidia.com/gpu.product" not in selector, where


def test_no_gpu_anywhere_without_gpus(variant: Variant, overlays: Overlays) -> None:
    text = str(overlays)
    assert ("nvidia.com/gpu" in text) == bool(variant[1]["use_gpu"])


def test_production_keeps_two_replicas_and_staging_may_scale_to_zero(
    variant: Variant, overlays: Overlays
) -> None:
    scale_to_zero = variant[1].get("scale_to_zero", True)
    for name, objects in overlays.items():
        predictor = the_isvc(objects)["spec"]["predictor"]
        if name == STAGING:
            assert predictor["minReplicas"] == (0 if scale_to_zero else 1), name
        else:
            assert predictor["minReplicas"] >= 2, name
        assert predictor["maxReplicas"] >= max(predictor["minReplicas"], 1), name


def test_serverless_autoscaling_on_request_concurrency(
    variant: Variant, overlays: Overlays
) -> None:
    """Knative revisions (canary rollouts, scale to zero), scaled on requests in flight."""
    for name, objects in overlays.items():
        isvc = the_isvc(objects)
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
        assert "serving.kserve.io/autoscalerClass" not in isvc["metadata"]["annotations"]
        predictor = isvc["spec"]["predictor"]
        assert predictor["scaleMetric"] == "concurrency", name
        assert 0 < predictor["scaleTarget"] < predictor["containerConcurrency"], name
        knative = predictor["annotations"]
        assert knative["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
        # The revision may take as long to become ready as the startup probe allows.
        startup = predictor["model"]["startupProbe"]
        allowed = startup["periodSeconds"] * startup["failureThreshold"]
        deadline = knative["serving.knative.dev/progress-deadline"]
        assert deadline.endswith("m") and int(deadline[:-1]) * 60 > allowed, name


def test_disruption_budget_never_evicts_the_last_ready_replica(overlays: Overlays) -> None:
    for name, objects in overlays.items():
        predictor = next(w for w in workloads(objects) if w.owner.startswith("InferenceService"))
        (budget,) = of_kind(objects, "PodDisruptionBudget")
        spec = budget["spec"]
        assert matches(spec["selector"]["matchLabels"], predictor.labels), name
        # One pod at a time, counted against the replicas the revision should have: with
        # two or more replicas the last ready one stays.
        assert spec == {**spec, "maxUnavailable": 1} and "minAvailable" not in spec, name
        if name != STAGING:
            assert predictor.pod["minReplicas"] >= 2, name
        # An unready pod serves nothing and must never hold a node drain up.
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name


def test_namespace_enforces_the_restricted_pod_security_standard(
    variant: Variant, overlays: Overlays
) -> None:
    for name, objects in overlays.items():
        (namespace,) = of_kind(objects, "Namespace")
        assert namespace["metadata"]["name"] == namespace_of(variant, name)
        labels = namespace["metadata"]["labels"]
        assert {k: labels.get(k) for k in POD_SECURITY} == POD_SECURITY, name
        assert objects[0] is namespace, f"{name}: the namespace must come first"
        namespaced = [o for o in objects if o["kind"] != "Namespace"]
        assert {o["metadata"]["namespace"] for o in namespaced} == {namespace_of(variant, name)}


def test_replicas_spread_over_zones(overlays: Overlays) -> None:
    for name, objects in overlays.items():
        predictor = next(w for w in workloads(objects) if w.owner.startswith("InferenceService"))
        (spread,) = predictor.pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone", name
        assert spread["maxSkew"] == 1 and spread["whenUnsatisfiable"] == "ScheduleAnyway", name
        assert matches(spread["labelSelector"]["matchLabels"], predictor.labels), name


def test_serving_pods_carry_their_environment(variant: Variant, overlays: Overlays) -> None:
    """Trellis's scorecards read ``trellis.dev/environment`` (absent means production)."""
    for name, objects in overlays.items():
        environment = "staging" if name == STAGING else "production"
        for obj in objects:
            assert obj["metadata"]["labels"]["trellis.dev/environment"] == environment, name
        for pod in workloads(objects):
            assert pod.labels["trellis.dev/environment"] == environment, (name, pod.owner)
        if variant[1]["cloud"] == "azure":  # workload identity's token is injected on request
            for pod in workloads(objects):
                assert pod.labels["azure.workload.identity/use"] == "true", (name, pod.owner)


def test_staging_is_the_hub_without_training_or_alerts(
    variant: Variant, overlays: Overlays
) -> None:
    hub = overlays[variant[1]["hub_region"]]
    staging = overlays[STAGING]
    assert not of_kind(staging, "Job"), "staging must not train"
    assert not [o for o in staging if "training" in str(o["metadata"].get("labels", {}))]
    assert not of_kind(staging, "PrometheusRule") and not of_kind(staging, "GrafanaDashboard")
    assert of_kind(hub, "PrometheusRule") and of_kind(hub, "GrafanaDashboard")
    hub_model = the_isvc(hub)["spec"]["predictor"]["model"]
    staging_model = the_isvc(staging)["spec"]["predictor"]["model"]
    assert staging_model == hub_model, "staging must serve what the hub serves, from its bucket"


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
    for overlay, objects in overlays.items():
        region = region_of(variant, overlay)
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
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == namespace_of(variant, overlay)
        for pod in workloads(objects):
            assert pod.labels.get("trellis.dev/data-residency") == region, pod.owner
            assert pod.labels.get("trellis.dev/region") == region, pod.owner


def expected_storage_uri(cloud: str, repository: str, project: str, region: str) -> str:
    """The model's root in the regional bucket, by the naming rule of infra/storage.tf."""
    suffix = hashlib.sha1(repository.encode()).hexdigest()[:8]
    bucket = f"{project[:28].rstrip('-')}-{region}-{suffix}"
    if cloud == "azure":
        account_hash = hashlib.sha1(f"{suffix}/{region}".encode()).hexdigest()[:8]
        account = f"st{project.replace('-', '')[:12]}{account_hash}"
        return f"https://{account}.blob.core.windows.net/models/{project}"
    scheme = {"aws": "s3", "gcp": "gs"}[cloud]
    return f"{scheme}://{bucket}/models/{project}"


def test_model_storage_is_the_regions_own_bucket(variant: Variant, overlays: Overlays) -> None:
    """Each overlay reads the model root in the bucket Terraform creates in that region, and no
    other; the rollout appends the version. publish reads the root from the overlay's patch."""
    cloud = variant[1]["cloud"]
    recorded = yaml.safe_load((variant[2] / ".copier-answers.yml").read_text())
    repository = recorded["repository"]
    for overlay, objects in overlays.items():
        region = region_of(variant, overlay)
        uri = the_isvc(objects)["spec"]["predictor"]["model"]["storageUri"]
        assert uri.startswith(STORAGE_SCHEMES[cloud]), uri
        assert uri == expected_storage_uri(cloud, repository, slug(variant), region)
        if overlay == STAGING:
            continue  # it takes the hub overlay's, patch and all
        kustomization = variant[2] / "deploy" / "overlays" / overlay / "kustomization.yaml"
        (patch,) = [p for p in yaml.safe_load(kustomization.read_text())["patches"]
                    if p["target"]["kind"] == "InferenceService"]  # fmt: skip
        ops = yaml.safe_load(patch["patch"])
        wanted = {"op": "add", "path": "/spec/predictor/model/storageUri", "value": uri}
        assert wanted in ops, overlay
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
        if region == STAGING:
            continue  # no alerts for staging (test_staging_is_the_hub_without_training_or_alerts)
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
        # Production only: staging's series, on the hub's Prometheus too, stay out.
        production = f'namespace="{slug(variant)}", inferenceservice="{slug(variant)}"'
        assert all(production in e for e in latency + errors)


def ingress_ports(objects: list[Manifest], labels: dict[str, str]) -> dict[int, set[str]]:
    """Port → the namespaces the NetworkPolicies selecting ``labels`` let in on it."""
    allowed: dict[int, set[str]] = {}
    for policy in of_kind(objects, "NetworkPolicy"):
        if not matches(policy["spec"]["podSelector"].get("matchLabels", {}), labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            sources = {
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for peer in rule["from"]
            }
            for port in rule.get("ports", []):
                allowed.setdefault(port["port"], set()).update(sources)
    return allowed


def test_metrics_are_scraped_and_allowed(variant: Variant, overlays: Overlays) -> None:
    port = 8002 if answer(variant, "serving_runtime") == "triton" else 8082
    for name, objects in overlays.items():
        predictor = next(w for w in workloads(objects) if w.owner.startswith("InferenceService"))
        (monitor,) = of_kind(objects, "PodMonitor")
        assert matches(monitor["spec"]["selector"]["matchLabels"], predictor.labels), name
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["portNumber"] == port
        # Alerts, dashboards, Trellis and the canary decision select on these labels.
        targets = {r.get("targetLabel") for r in endpoint["relabelings"]}
        assert {"inferenceservice", "region", "environment", "revision"} <= targets, name
        allowed = ingress_ports(objects, predictor.labels)
        assert allowed == {
            # Knative's queue-proxy takes the requests (HTTP/1, HTTP/2) from the gateway and
            # the activator, and tells the autoscaler its load.
            8012: {"istio-system", "knative-serving"},
            8013: {"istio-system", "knative-serving"},
            9090: {"knative-serving"},
            port: {"monitoring"},
        }, name


def test_egress_reaches_dns_and_the_object_store_only(variant: Variant, overlays: Overlays) -> None:
    """No pod may reach any address on 443: the object store is named by its CIDRs."""
    cloud = variant[1]["cloud"]
    mlflow = answer(variant, "mlflow_tracking_uri")
    for name, objects in overlays.items():
        policies = of_kind(objects, "NetworkPolicy")
        for pod in workloads(objects):
            rules = [
                rule
                for p in policies
                if matches(p["spec"]["podSelector"].get("matchLabels", {}), pod.labels)
                for rule in p["spec"].get("egress", [])
            ]
            where = f"{name} {pod.owner}"
            assert all(rule.get("to") for rule in rules), f"{where}: egress to anywhere"
            blocks = {
                peer["ipBlock"]["cidr"]
                for rule in rules
                if {"protocol": "TCP", "port": 443} in rule["ports"]
                for peer in rule["to"]
            }
            assert blocks, where
            # Private ranges at widest (10.0.0.0/8), never a large slice of the internet.
            assert min(int(cidr.split("/")[1]) for cidr in blocks) >= 8, (where, blocks)
            if cloud == "gcp":
                assert "199.36.153.8/30" in blocks, where  # private.googleapis.com
            # Where the pod's workload identity gets its credentials, on the node.
            identity = {
                "aws": {("169.254.170.23/32", 80)},  # EKS Pod Identity agent
                "gcp": {("169.254.169.254/32", 80), ("169.254.169.252/32", 988)},
                "azure": set(),  # Entra ID sign-in, over 443 above
            }[cloud]
            link_local = {
                (peer["ipBlock"]["cidr"], port["port"])
                for rule in rules
                for peer in rule["to"]
                if peer.get("ipBlock", {}).get("cidr", "").startswith("169.254.")
                for port in rule["ports"]
            }
            assert link_local == identity, where
            namespaces = {
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for rule in rules
                for peer in rule["to"]
                if "namespaceSelector" in peer
            }
            training = pod.owner.startswith("Job")
            mlflow_namespace = mlflow.split("//")[1].split(".")[1]
            assert namespaces == (
                {"kube-system", mlflow_namespace} if training else {"kube-system"}
            )


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


def test_runbook_deploys_a_published_version(variant: Variant, tmp_path: Path) -> None:
    """The runbook's by-hand deploy, run as written up to ``kubectl apply``, serves the version."""
    answers, repo = variant[1], variant[2]
    runbook = (repo / "docs" / "runbook.md").read_text()
    block = runbook.split("## Deploy", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    apply = (
        "| kubectl apply --selector 'app.kubernetes.io/component notin (training,namespace)' -f -"
    )
    assert apply in block
    script = block.replace(apply, '> "$OUT"').replace("kubectl -n", "# kubectl -n")
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    path = f"{Path(kubectl()).parent}{os.pathsep}{os.environ['PATH']}"
    out = tmp_path / "staging.yaml"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=repo,
        env={**os.environ, "PATH": path, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OVERLAY=staging" in script
    served = the_isvc([d for d in yaml.safe_load_all(out.read_text()) if d])
    hub = answers["hub_region"]
    root = expected_storage_uri(answers["cloud"], recorded["repository"], slug(variant), hub)
    assert served["spec"]["predictor"]["model"]["storageUri"] == f"{root}/7"
    # The one-off fix it gives for KServe's storage initializer meets the restricted standard.
    patch = re.search(r"kubectl patch clusterstoragecontainer default --type merge -p '(.*?)'",
                      runbook, re.DOTALL)  # fmt: skip
    assert patch, "the runbook must say how to admit KServe's storage initializer"
    context = json.loads(patch.group(1))["spec"]["container"]["securityContext"]
    assert context == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_trellis_sees_each_server_in_its_environment(variant: Variant, overlays: Overlays) -> None:
    """What Trellis's scorecards read of each overlay's server, before any replica runs."""
    answers = variant[1]
    for name, objects in overlays.items():
        cluster = ClusterObjects(
            inference_services=of_kind(objects, "InferenceService"),
            servers=[],
            predictors=[],
            network_policies=of_kind(objects, "NetworkPolicy"),
        )
        (server,) = to_deployments(name, cluster, default_region="unknown")
        facts = server_deployment_facts(server, None)
        assert facts["environment"] == ("staging" if name == STAGING else "production"), name
        assert facts["region"] == region_of(variant, name)
        assert facts["runsAsNonRoot"] is True and facts["hasNetworkPolicy"] is True, name
        assert facts["gpuRequests"] == facts["gpuLimits"], name
        assert server.model_name == slug(variant)
        # Before the rollout sets a version, the server names the model root, not an alias.
        assert server.model_version is None, (name, server.model_version)
        if name != STAGING:
            assert facts["desiredReplicas"] >= 2, name
        if answers["use_gpu"] and answers.get("gpu_sharing", "none") == "none":
            assert facts["gpuRequests"] == answers["gpu_count"], name
