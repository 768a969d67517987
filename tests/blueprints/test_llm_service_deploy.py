"""The llm-service blueprint's Kustomize deployment: one overlay per region, valid and wired.

Every overlay renders with ``kubectl kustomize`` and validates (built-in kinds strictly, custom
resources against their CRD schemas); the model server pulls its weights from the registry,
never from the hub, runs vLLM with the answers' settings and LoRA adapters, scales on vLLM's
queue, and is scraped, alerted on and summarised by the recording rules Trellis reads.
"""

from __future__ import annotations

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
from trellis.observability import queries

pytestmark = pytest.mark.tools

Variant = tuple[str, dict[str, Any], Path]
Overlays = dict[str, list[Manifest]]

#: The recording rules Trellis's observability reads (its own names): name -> (metric, how).
RECORDING_RULES = {
    queries.VLLM_RECORDED_GENERATION_TOKENS: ("rate(vllm:generation_tokens_total", "sum"),
    queries.VLLM_RECORDED_PROMPT_TOKENS: ("rate(vllm:prompt_tokens_total", "sum"),
    queries.VLLM_RECORDED_TTFT_BUCKETS: ("rate(vllm:time_to_first_token_seconds_bucket", "sum"),
    queries.VLLM_RECORDED_WAITING: ("vllm:num_requests_waiting", "sum"),
    queries.VLLM_RECORDED_KV_CACHE: ("vllm:kv_cache_usage_perc", "max"),
}


@pytest.fixture(scope="module")
def overlays(llm_variant: Variant) -> Overlays:
    """Every overlay of the rendered repository, built with ``kubectl kustomize``."""
    return render_overlays(llm_variant[2])


@pytest.fixture(scope="module")
def answers(llm_variant: Variant) -> dict[str, Any]:
    """Every answer the repository was rendered with, defaults included."""
    return yaml.safe_load((llm_variant[2] / ".copier-answers.yml").read_text())


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def the_server(objects: list[Manifest]) -> tuple[Manifest, Workload, Manifest]:
    """(the serving object, its pod, its vLLM container)."""
    servers = of_kind(objects, "InferenceService") + of_kind(objects, "Deployment")
    assert len(servers) == 1, [s["kind"] for s in servers]
    (pod,) = workloads(servers)
    return servers[0], pod, pod.containers[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flag(args: list[str], name: str) -> str | None:
    """The value of ``--name=value`` in a container's arguments."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[0] if values else None


def test_one_overlay_per_region_and_every_object_validates(answers, overlays):
    assert sorted(overlays) == sorted(answers["regions"])
    for region, objects in overlays.items():
        assert any(is_builtin(o) for o in objects) and not all(is_builtin(o) for o in objects)
        errors = validate_builtin(objects) + validate_custom(objects)
        assert not errors, f"overlay {region}:\n" + "\n".join(errors)
        kinds = {o["kind"] for o in objects}
        assert {"ScaledObject", "PodMonitor", "PrometheusRule", "NetworkPolicy"} <= kinds


def test_the_runtime_is_the_one_chosen(answers, overlays):
    for objects in overlays.values():
        server, _, container = the_server(objects)
        if answers["runtime"] == "kserve":
            assert server["kind"] == "InferenceService"
            model = server["spec"]["predictor"]["model"]
            assert model["modelFormat"] == {"name": "huggingface"}
            assert "--backend=vllm" in model["args"]
            assert flag(model["args"], "model_dir") == "/mnt/models/base"
            assert server["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == (
                "external"
            )
        else:
            assert server["kind"] == "Deployment"
            assert container["image"].startswith("vllm/vllm-openai:")
            assert flag(container["args"], "model") == "/mnt/models/base"
            (service,) = of_kind(objects, "Service")
            assert matches(
                service["spec"]["selector"], server["spec"]["template"]["metadata"]["labels"]
            )


def test_vllm_arguments_follow_the_answers(answers, overlays):
    for objects in overlays.values():
        _, _, container = the_server(objects)
        args = container["args"]
        assert flag(args, "served-model-name") == answers["served_model_name"]
        assert flag(args, "tensor-parallel-size") == str(answers["tensor_parallel_size"])
        assert flag(args, "max-model-len") == str(answers["max_model_len"])
        quantization = flag(args, "quantization")
        assert quantization == (
            None if answers["quantization"] == "none" else answers["quantization"]
        )
        adapters = answers["lora_adapters"]
        if adapters:
            assert "--enable-lora" in args
            modules = args[args.index("--lora-modules") + 1 :]
            assert modules == [f"{a}=/mnt/models/adapters/{a}" for a in adapters]
        else:
            assert "--enable-lora" not in args and "--lora-modules" not in args


def test_the_contract_labels_and_annotations(answers, overlays):
    for region, objects in overlays.items():
        server, pod, _ = the_server(objects)
        meta = server["metadata"]
        assert meta["labels"]["trellis.dev/registered-model"] == answers["registered_model"]
        assert meta["labels"]["trellis.dev/region"] == region
        assert meta["labels"]["trellis.dev/runtime"] == "vllm"
        assert meta["annotations"]["trellis.dev/lora-adapters"] == ",".join(
            answers["lora_adapters"]
        )
        assert pod.labels["trellis.dev/region"] == region, "PodMonitor reads the pod's region"
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels["backstage.io/kubernetes-id"] == answers["service_slug"]
            assert labels["trellis.dev/blueprint"] == "llm-service"
            assert obj["metadata"]["namespace"] == answers["service_slug"]


def test_weights_come_from_the_registry_never_from_the_hub(answers, overlays):
    for region, objects in overlays.items():
        _, pod, container = the_server(objects)
        (init,) = pod.pod["initContainers"]
        assert init["command"] == ["pull-model"]
        init_env = {e["name"]: e.get("value") for e in init["env"]}
        assert init_env["MLFLOW_TRACKING_URI"] == answers["registry_uri"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["HF_HUB_OFFLINE"] == "1", region
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["model-cache"]["mountPath"] == "/mnt/models"
        assert mounts["model-cache"]["readOnly"] is True
        assert "huggingface.co" not in str(objects) and "hf://" not in str(objects)


def test_gpus_shared_memory_and_probes_sized_for_loading(answers, overlays):
    for region, objects in overlays.items():
        _, pod, container = the_server(objects)
        for bound in ("requests", "limits"):
            assert container["resources"][bound]["nvidia.com/gpu"] == str(answers["gpus"])
        assert pod.pod["nodeSelector"]["nvidia.com/gpu.product"] == answers["gpu_type"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod.pod[
            "tolerations"
        ]
        volumes = {v["name"]: v for v in pod.pod["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        assert "model-cache" in volumes
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/dev/shm", "/mnt/models"}
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 1200, region
        assert container["readinessProbe"]["httpGet"]["path"]
        assert container["livenessProbe"]["failureThreshold"] >= 3


def test_containers_run_as_non_root_with_limits(overlays):
    for region, objects in overlays.items():
        _, pod, _ = the_server(objects)
        pod_sc = pod.pod["securityContext"]
        assert pod.pod["automountServiceAccountToken"] is False
        accounts = {a["metadata"]["name"] for a in of_kind(objects, "ServiceAccount")}
        assert pod.pod["serviceAccountName"] in accounts
        for container in [*pod.containers, *pod.pod["initContainers"]]:
            sc = container["securityContext"]
            where = f"{region} {container.get('name', 'model')}"
            assert sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where


def test_keda_scales_on_the_vllm_queue_within_the_answers_bounds(answers, overlays):
    for objects in overlays.values():
        server, _, _ = the_server(objects)
        (scaled,) = of_kind(objects, "ScaledObject")
        spec = scaled["spec"]
        assert spec["minReplicaCount"] == answers["min_replicas"]
        assert spec["maxReplicaCount"] == answers["max_replicas"]
        target = spec["scaleTargetRef"]
        expected = server["metadata"]["name"] + (
            "-predictor" if server["kind"] == "InferenceService" else ""
        )
        assert (target["kind"], target["name"]) == ("Deployment", expected)
        queue = [
            t for t in spec["triggers"] if "vllm:num_requests_waiting" in t["metadata"]["query"]
        ]
        assert [t["type"] for t in queue] == ["prometheus"]
        # From zero there is no vLLM to scrape: something in front must wake the service.
        assert (len(spec["triggers"]) > 1) is (answers["min_replicas"] == 0)


def test_every_series_is_labelled_for_trellis_and_the_rules_are_the_contract(answers, overlays):
    slug = answers["service_slug"]
    for region, objects in overlays.items():
        _, pod, _ = the_server(objects)
        (monitor,) = of_kind(objects, "PodMonitor")
        assert matches(monitor["spec"]["selector"]["matchLabels"], pod.labels), region
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        targets = {r.get("targetLabel"): r for r in endpoint["relabelings"]}
        assert targets["inferenceservice"]["replacement"] == slug
        assert targets["region"]["sourceLabels"] == [
            "__meta_kubernetes_pod_label_trellis_dev_region"
        ]

        (rule,) = of_kind(objects, "PrometheusRule")
        rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
        recorded = {r["record"]: " ".join(r["expr"].split()) for r in rules if "record" in r}
        assert set(recorded) == set(RECORDING_RULES), region
        for name, (metric, how) in RECORDING_RULES.items():
            expr = recorded[name]
            by = (
                "(namespace, inferenceservice, region, le)"
                if "bucket" in name
                else ("(namespace, inferenceservice, region)")
            )
            assert expr.startswith(f"{how} by {by} ("), expr
            assert metric in expr and f'inferenceservice="{slug}"' in expr, expr
        alerts = {r["alert"]: " ".join(r["expr"].split()) for r in rules if "alert" in r}
        assert "time_to_first_token" in alerts["LLMTimeToFirstTokenHigh"]
        assert "num_requests_waiting" in alerts["LLMQueueBacklog"]
        assert "kv_cache_usage_perc" in alerts["LLMKVCacheNearlyFull"]


def test_the_network_policy_admits_the_gateway_and_scrapes_and_reaches_the_registry(
    answers, overlays
):
    registry_port = re.search(r":(\d+)", answers["registry_uri"].split("//", 1)[1])
    for region, objects in overlays.items():
        _, pod, _ = the_server(objects)
        policies = [
            p
            for p in of_kind(objects, "NetworkPolicy")
            if matches(p["spec"]["podSelector"]["matchLabels"], pod.labels)
        ]
        assert policies, region
        for policy in policies:
            assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            assert all(rule.get("from") for rule in policy["spec"]["ingress"])
        egress_ports = {
            p["port"]
            for policy in policies
            for rule in policy["spec"]["egress"]
            for p in rule.get("ports", [])
        }
        assert 443 in egress_ports and 53 in egress_ports
        if registry_port:
            assert int(registry_port.group(1)) in egress_ports
