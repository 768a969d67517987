"""platform-spoke's Kubernetes layer: what `kubectl kustomize deploy` renders, per cloud.

Every object validates (built-in kinds strictly against the Kubernetes schemas, custom
resources against their CRD schemas); the model namespaces start from default deny with only
DNS and the metrics scrape allowed; Prometheus labels every series with the region and writes
to the hub (or keeps the data in the region); the identity Trellis reads the cluster with may
list exactly what Trellis lists, and the kubeconfig context Trellis gets names the spoke and
refers to a token file instead of holding a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from support.manifests import describe, render_overlay, validate_builtin, validate_custom

pytestmark = pytest.mark.tools  # kubectl kustomize

Variant = tuple[str, dict[str, Any], Path]
Manifest = dict[str, Any]

#: (API group, resource) → verbs: the list calls of trellis.sources.kubernetes, and no more.
TRELLIS_READS = {
    ("serving.kserve.io", "inferenceservices"): ["list"],
    ("apps", "deployments"): ["list"],
    ("networking.k8s.io", "networkpolicies"): ["list"],
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    """Variant name → the objects its ``deploy`` folder renders (filled per variant)."""
    return {}


def objects_of(variant: Variant, rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    name, _, repo = variant
    if name not in rendered:
        rendered[name] = render_overlay(repo / "deploy")
    return rendered[name]


def find(objects: list[Manifest], kind: str, name: str, namespace: str | None = None) -> Manifest:
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace") == namespace
    ]
    return found


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_every_object_renders_and_validates(
    spoke_variant: Variant, rendered: dict[str, list[Manifest]]
) -> None:
    objects = objects_of(spoke_variant, rendered)
    assert validate_builtin(objects) == []
    assert validate_custom(objects) == []
    kinds = {o["kind"] for o in objects}
    assert kinds >= {
        "Namespace", "NetworkPolicy", "ClusterServingRuntime", "ServiceAccount", "DaemonSet",
        "ServiceMonitor", "StatefulSet", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
    }  # fmt: skip
    region = answers_of(spoke_variant[2])["spoke_region"]
    unlabelled = [
        describe(o) for o in objects if o["metadata"]["labels"].get("trellis.dev/region") != region
    ]
    assert unlabelled == []


def test_model_namespaces_deny_by_default_and_allow_dns(
    spoke_variant: Variant, rendered: dict[str, list[Manifest]]
) -> None:
    objects = objects_of(spoke_variant, rendered)
    namespaces = answers_of(spoke_variant[2])["spoke_workload_namespaces"]
    for namespace in [*namespaces, "monitoring"]:
        find(objects, "Namespace", namespace)
        deny = find(objects, "NetworkPolicy", "default-deny", namespace)["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace
    for namespace in namespaces:
        dns = find(objects, "NetworkPolicy", "allow-dns", namespace)["spec"]
        assert dns["policyTypes"] == ["Egress"] and "ingress" not in dns
        (rule,) = dns["egress"]
        assert {(p["protocol"], p["port"]) for p in rule["ports"]} == {("UDP", 53), ("TCP", 53)}
        (peer,) = rule["to"]
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "kube-system"
        }
        scrape = find(objects, "NetworkPolicy", "allow-metrics-scrape", namespace)["spec"]
        assert scrape["policyTypes"] == ["Ingress"]
        (source,) = scrape["ingress"][0]["from"]
        assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    open_rules = [
        describe(policy)
        for policy in objects
        if policy["kind"] == "NetworkPolicy" and policy["metadata"]["namespace"] in namespaces
        for direction, peers in (("egress", "to"), ("ingress", "from"))
        for rule in policy["spec"].get(direction, [])
        if not rule.get(peers)
    ]
    assert open_rules == [], "no policy in a model namespace opens to everyone"


def test_trellis_reads_the_cluster_with_exactly_its_list_calls(
    spoke_variant: Variant, rendered: dict[str, list[Manifest]]
) -> None:
    objects = objects_of(spoke_variant, rendered)
    role = find(objects, "ClusterRole", "trellis-reader")
    granted = {
        (group, resource): rule["verbs"]
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == TRELLIS_READS
    binding = find(objects, "ClusterRoleBinding", "trellis-reader")
    assert binding["roleRef"]["name"] == "trellis-reader"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "trellis-reader", "namespace": "trellis-system"}
    ]
    token = find(objects, "Secret", "trellis-reader-token", "trellis-system")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == (
        "trellis-reader"
    )


def test_the_kubeconfig_context_names_the_spoke_and_holds_no_token(
    spoke_variant: Variant,
) -> None:
    repo = spoke_variant[2]
    name = answers_of(repo)["spoke_name"]
    config = yaml.safe_load((repo / "trellis" / "kubeconfig-context.yaml").read_text())
    assert config["current-context"] == name
    ((context,),) = [config["contexts"]]
    assert context["name"] == name and context["context"]["cluster"] == name
    (user,) = config["users"]
    assert user["user"] == {"tokenFile": f"{name}.token"}
    (cluster,) = config["clusters"]
    assert cluster["name"] == name and cluster["cluster"]["server"].startswith("https://")
    assert "trellis/*.token" in (repo / ".gitignore").read_text().splitlines()


def test_prometheus_labels_the_region_and_writes_to_the_hub_or_keeps_local(
    spoke_variant: Variant, rendered: dict[str, list[Manifest]]
) -> None:
    _, answers, repo = spoke_variant
    objects = objects_of(spoke_variant, rendered)
    recorded = answers_of(repo)
    (configmap,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus-config-")
    ]
    config = yaml.safe_load(configmap["data"]["prometheus.yml"])
    assert config["global"]["external_labels"]["region"] == answers["spoke_region"]
    assert config["global"]["external_labels"]["spoke"] == answers["spoke_name"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"dcgm-exporter", "model-servers"}
    assert jobs["dcgm-exporter"]["honor_labels"] is True  # the GPU user's namespace and pod
    sd = jobs["model-servers"]["kubernetes_sd_configs"][0]["namespaces"]["names"]
    assert sd == recorded["spoke_workload_namespaces"]
    statefulset = find(objects, "StatefulSet", "prometheus", "monitoring")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    if recorded["spoke_remote_write_url"]:
        (remote,) = config["remote_write"]
        assert remote["url"] == recorded["spoke_remote_write_url"]
        assert "--agent" in container["args"]
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        token = remote["authorization"]["credentials_file"]
        assert str(Path(token).parent) in mounted
        assert volumes["remote-write"]["secret"]["secretName"] == "hub-remote-write"
    else:
        assert "remote_write" not in config
        assert "--agent" not in container["args"]
        assert "--storage.tsdb.retention.time=15d" in container["args"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountToken" in volumes["kube-api-access"]["projected"]["sources"][0]


def test_gpu_nodes_get_the_exporter_and_model_servers_the_gpu_runtime(
    spoke_variant: Variant, rendered: dict[str, list[Manifest]]
) -> None:
    objects = objects_of(spoke_variant, rendered)
    recorded = answers_of(spoke_variant[2])
    exporter = find(objects, "DaemonSet", "dcgm-exporter", "monitoring")["spec"]["template"]
    assert exporter["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" for t in exporter["spec"]["tolerations"])
    env = {e["name"]: e["value"] for e in exporter["spec"]["containers"][0]["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"
    monitor = find(objects, "ServiceMonitor", "dcgm-exporter", "monitoring")["spec"]
    service = find(objects, "Service", "dcgm-exporter", "monitoring")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    runtime = find(objects, "ClusterServingRuntime", "gpu-huggingface")["spec"]
    assert runtime["nodeSelector"]["nvidia.com/gpu.product"] == recorded["spoke_gpu_product"]
    assert runtime["tolerations"][0]["key"] == "nvidia.com/gpu"
    for namespace in recorded["spoke_workload_namespaces"]:
        reader = find(objects, "ServiceAccount", "hub-model-reader", namespace)
        assert reader["metadata"]["annotations"], namespace
        hub = find(objects, "ConfigMap", "hub-registry", namespace)["data"]
        assert hub["MLFLOW_TRACKING_URI"] == recorded["spoke_hub_registry_url"]
        assert hub["HUB_MODEL_STORE"] == recorded["spoke_hub_model_store"]
